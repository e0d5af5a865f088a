"""ResumeBatchCheckHook: a resume with another total batch is named at start, through a real
mmengine Runner (a linear model on 8 vectors: seconds)."""
import glob
import os.path as osp

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

from famt_mm.engine.hooks.resume_batch_hook import ResumeBatchCheckHook


class TinyRegression(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.linear(torch.stack(inputs)).pow(2).mean())


def run(work_dir, name, batch_size, resume_from=None):
    """Train 2 epochs of 8 samples (or finish a resumed run); the run's log text."""
    dataset = [dict(inputs=torch.full((4,), float(i))) for i in range(8)]
    runner = Runner(
        model=TinyRegression(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(batch_size=batch_size, dataset=dataset, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='CosineAnnealingLR', T_max=2, by_epoch=True,
                             convert_to_iter_based=True),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[ResumeBatchCheckHook()],
        resume=resume_from is not None, load_from=resume_from, default_scope='mmengine')
    runner.train()
    log, = glob.glob(osp.join(str(work_dir), '*', '*.log'))
    return open(log, encoding='utf-8').read()


def test_resume_with_another_total_batch_names_both_and_the_fix(tmp_path):
    run(tmp_path / 'first', 'first', batch_size=2)
    ckpt = str(tmp_path / 'first' / 'epoch_1.pth')
    saved = torch.load(ckpt, map_location='cpu', weights_only=False)['meta']
    assert saved['famt_total_batch'] == dict(world_size=1, batch_size=2, total=2,
                                             iters_per_epoch=4)

    log = run(tmp_path / 'bigger', 'bigger', batch_size=4, resume_from=ckpt)
    assert ('Resuming a run trained with total batch 2 (1 processes x 2, 4 iterations per '
            'epoch) with total batch 4 (1 processes x 4, 2 iterations per epoch)') in log
    assert 'learning rate is not rescaled' in log
    assert 'train_dataloader.batch_size=2 with 1 processes' in log

    log = run(tmp_path / 'same', 'same', batch_size=2, resume_from=ckpt)
    assert 'Resuming a run trained with' not in log


def test_checkpoints_without_the_record_compare_iterations_per_epoch(tmp_path):
    from famt_mm.engine.hooks.resume_batch_hook import batch_change_message, saved_batch
    before = saved_batch(dict(epoch=3, iter=12))  # an older checkpoint: 4 per epoch
    now = dict(world_size=2, batch_size=4, total=8, iters_per_epoch=2)
    assert 'trained with 4 iterations per epoch' in batch_change_message(before, now)
    assert batch_change_message(before, dict(now, iters_per_epoch=4)) is None
    assert saved_batch(dict(epoch=0, iter=0)) is None
