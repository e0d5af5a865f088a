"""Rehearse the ImageNet cluster path on this machine (famt_mm.analysis.rehearsal).

    python tools/analysis/rehearse_cluster.py ROOT [--nproc 4] [--images 3000]
        [--kill-rank 1] [--dist-timeout 60] [--log ROOT/rehearsal.log]

4 processes (torchrun, gloo, CPU) train configs/famt_mae_vit-b_in1k.py, shrunk with
--cfg-options (ViT-tiny, 64 px crops, a file bank, refreshes before epochs 2 and 3, counted
from 1), on a generated folder of ImageNet-size JPEGs; one rank is SIGKILLed in the second
refresh; the job is resumed with --resume on 4 processes. Prints a summary; exits 1 if a check
failed.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from famt_mm.analysis.rehearsal import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
