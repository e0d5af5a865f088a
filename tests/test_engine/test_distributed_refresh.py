"""The refresh pass sharded over 2 processes (torchrun, gloo) gives the 1-process bank."""
import glob
import os.path as osp

import torch

from famt_mm.compat import load_local_checkpoint
from tests.conftest import FAMT_DEMO, REPO, run_tool, write_tiny_config


def test_bank_of_two_processes_equals_bank_of_one(tmp_path):
    # Refresh before epoch 0, i.e. with the (seeded, rank-0-broadcast) initial
    # weights, one image per refresh batch so every image is computed with the same
    # tensor shapes in both runs. 41 images: rank 1 gets one image fewer, so the
    # gather has to cope with unequal shards.
    hook = dict(type='FAMTWeightHook', start_epoch=0, interval=1, batch_size=1, num_workers=0)
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=1,
                            custom_hooks=[hook],
                            **{'train_dataloader.dataset.num_samples': 41})
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    run_tool(['tools/train.py', cfg, '--work-dir', one])
    proc = run_tool(['-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29611',
                     osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', two,
                     '--launcher', 'pytorch'])
    log = open(glob.glob(osp.join(two, '*', '*.log'))[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert '21/21 images on this rank' in log  # rank 0's shard of 41
    bank1 = load_local_checkpoint(osp.join(one, 'epoch_1.pth'))['famt']['bank']
    bank2 = load_local_checkpoint(osp.join(two, 'epoch_1.pth'))['famt']['bank']
    assert bank1.shape == (41, 4, 4)
    assert torch.equal(bank1, bank2)
    assert bank1.float().std(0).mean() > 1e-3  # real maps, not uniform fallbacks
