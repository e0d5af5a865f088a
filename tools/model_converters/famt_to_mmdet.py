"""FAMT / MAE pre-training checkpoint -> mmdet backbone weights.

    python tools/model_converters/famt_to_mmdet.py SRC DST \
        [--img-size N] [--arch base] [--patch-size 16]

Same as famt2target.py --target mmdet (see there for what is written and refused).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from famt2target import add_arguments, run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    args = add_arguments(parser, with_target=False).parse_args(argv)
    args.target = 'mmdet'
    return run(args)


if __name__ == '__main__':
    main()
