"""FAMT / MAE pre-training checkpoint -> mmpretrain backbone weights.

    python tools/model_converters/famt_to_mmpretrain.py SRC DST [--img-size N] [--arch base]

Same as famt2target.py --target mmpretrain (see there).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from famt2target import main  # noqa: E402

if __name__ == '__main__':
    main(target='mmpretrain')
