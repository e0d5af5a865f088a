"""FAMTTwoNormDataPreprocessor: mmpretrain's two views in training, one view for the refresh."""
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import famt_mm  # noqa: F401  (registers the modules)

NORMS = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
             second_mean=[127.5, 127.5, 127.5], second_std=[127.5, 127.5, 127.5], to_rgb=True)


def test_two_views_as_mmpretrain_and_one_view_as_the_first():
    ours = MODELS.build(dict(type='FAMTTwoNormDataPreprocessor', **NORMS))
    plain = MODELS.build(dict(type='TwoNormDataPreprocessor', **NORMS))
    views = [torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample(), DataSample()]
    got = ours(dict(inputs=views, data_samples=samples))['inputs']
    ref = plain(dict(inputs=views, data_samples=samples))['inputs']
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, ref))
    # the refresh's batch: one view, stacked (default_collate)
    one = ours(dict(inputs=views[0], data_samples=samples))
    assert torch.equal(one['inputs'], ref[0]) and len(one['data_samples']) == 2
