"""The OpenMMLab stack imports, its compiled ops run, and our fixes are needed."""
import os
import pickle

import numpy as np
import pytest
import torch


def test_all_five_mm_packages_import_with_pinned_versions():
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    import mmseg
    assert (mmengine.__version__, mmcv.__version__, mmpretrain.__version__, mmdet.__version__,
            mmseg.__version__) == ('0.10.7', '2.1.0', '1.2.0', '3.3.0', '1.2.2')
    import mmdet.models  # noqa: F401  (needs mmcv._ext)
    import mmseg.models  # noqa: F401


def test_mmcv_compiled_ops_run_on_cpu():
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feat = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
    # Each output bin averages a 2 x 2 block of the 4 x 4 ramp.
    np.testing.assert_allclose(out.view(-1).numpy(), [2.5, 4.5, 10.5, 12.5], rtol=1e-5)


def test_mmengine_checkpoints_load_on_modern_torch(tmp_path):
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint
    hub = MessageHub.get_instance('famt_compat_test')
    hub.update_scalar('train/loss', 1.0)
    ckpt = {'meta': {'epoch': 1, 'seed': np.int64(3)}, 'message_hub': hub.state_dict(),
            'state_dict': {'w': torch.ones(2)}}
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(ckpt, path)
    major, minor = (int(v) for v in torch.__version__.split('.')[:2])
    if (major, minor) >= (2, 6):  # the trap the fix is for
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
    import famt_mm  # noqa: F401  (installs the fix)
    loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert loaded['meta']['epoch'] == 1 and torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_unresolvable_package_config_names_the_path_to_write():
    """mmengine resolves ``mmseg::`` by the distribution 'mmsegmentation'; where mmseg comes
    from another distribution (onedl-mmsegmentation) the message names the path instead."""
    import re

    from famt_mm.compat import unresolvable_package_config
    error = ModuleNotFoundError('mmsegmentation is not installed, please install '
                                'mmsegmentation manually')  # mmengine's own words
    why = unresolvable_package_config(error, 'configs/mmseg/x.py')
    assert why.startswith("configs/mmseg/x.py: mmengine cannot resolve 'mmseg::' bases")
    configs = re.search(r"-> '(\S+)/X'$", why).group(1)
    assert os.path.isfile(os.path.join(configs, '_base_', 'models', 'upernet_mae.py'))
    # a package that does not import here, or another error: mmengine's message stands
    assert unresolvable_package_config(ModuleNotFoundError(
        'mmaction2 is not installed, please install mmaction2 manually'), 'x.py') is None
    assert unresolvable_package_config(ModuleNotFoundError("No module named 'foo'"),
                                       'x.py') is None
