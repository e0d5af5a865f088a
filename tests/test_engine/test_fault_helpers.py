"""The test-only fault components of tests/test_engine/fault_helpers.py are registered and work."""
import numpy as np
from mmpretrain.registry import HOOKS, TRANSFORMS

from tests.test_engine.fault_helpers import FAMTTestBadPixels


def test_helpers_are_registered():
    for name in ('FAMTTestSlowDown', 'FAMTTestFailOnRank', 'FAMTTestDumpBank',
                 'FAMTTestDivergentBankHook'):
        assert HOOKS.get(name) is not None
    for name in ('FAMTTestSleep', 'FAMTTestBadPixels', 'FAMTTestFailOnIndex'):
        assert TRANSFORMS.get(name) is not None
    out = FAMTTestBadPixels(nan_indices=[1], inf_indices=[2]).transform(
        dict(img=np.zeros((2, 2, 3), np.uint8), sample_idx=2))
    assert np.isinf(out['img']).all() and out['img'].dtype == np.float32
