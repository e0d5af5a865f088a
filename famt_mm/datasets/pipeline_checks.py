"""Start-up checks of the pipelines FAMT depends on: the training pipeline must record the crop
box at the model's input size, the refresh pipeline must show the whole, un-augmented image.

Each check raises ``ValueError`` naming the transform and the fix (docs/method.md section 3).
"""
from typing import Optional, Sequence, Tuple

from .transforms import AUGMENTING, GEOMETRIC, FAMTRandomResizedCrop, transform_name


def check_refresh_pipeline(pipeline: Sequence) -> None:
    """The refresh pipeline must not augment, crop or flip (weights are per whole image)."""
    bad = [transform_name(t) for t in pipeline
           if any(a in transform_name(t) for a in AUGMENTING + GEOMETRIC)]
    if bad:
        raise ValueError(f'FAMTWeightHook: the refresh pipeline must not augment, crop '
                         f'or flip, but has {bad}; weights are computed on the whole '
                         'image resized to the input size')


def check_train_pipeline(dataset, input_hw: Tuple[int, int], grid_hw: Tuple[int, int],
                         on_bad_image: str = 'fail') -> Optional[str]:
    """Check the training pipeline of ``dataset``; return a warning to log, or None.

    It must crop with ``FAMTRandomResizedCrop`` at the model's input size ``input_hw``
    (H, W) and pack ``famt_crop``. A wrapped dataset (no ``pipeline.transforms``) is
    checked per batch by the mask generator instead.
    """
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', None)
    if transforms is None:
        return None
    crops = [t for t in transforms if isinstance(t, FAMTRandomResizedCrop)]
    if not crops:
        raise ValueError(
            'FAMTWeightHook: the training pipeline does not record the crop box; replace '
            'RandomResizedCrop by FAMTRandomResizedCrop (same arguments)')
    crop_hw = tuple(crops[-1].scale)  # (h, w), as mmpretrain's RandomResizedCrop
    if crop_hw != tuple(input_hw):
        raise ValueError(
            f'FAMTWeightHook: FAMTRandomResizedCrop makes {crop_hw[0]}x{crop_hw[1]} crops '
            f'but the model takes {input_hw[0]}x{input_hw[1]} inputs (backbone img_size, '
            f'{tuple(grid_hw)} patches); set the crop scale to the model input size')
    packs = [t for t in transforms if type(t).__name__ == 'PackInputs']
    if packs and 'famt_crop' not in packs[-1].meta_keys:
        raise ValueError(
            "FAMTWeightHook: PackInputs must keep 'famt_crop' (and 'sample_idx', 'flip', "
            "'flip_direction'): use PackInputs(meta_keys=famt_mm.datasets.FAMT_META_KEYS)")
    loads = [t for t in transforms if type(t).__name__ == 'LoadImageFromFile']
    if on_bad_image == 'skip' and loads and not (
            loads[0].ignore_empty and loads[0].imdecode_backend == 'pillow'):
        # mmcv honours ignore_empty only for decoder exceptions; cv2 returns None
        # silently and then trips an assert, so only pillow + ignore_empty lets
        # mmengine's BaseDataset replace the image by another one.
        return ("FAMTWeightHook(on_bad_image='skip') covers the refresh pass only: the "
                'training pipeline will still stop on an unreadable image. To have mmengine '
                'replace such an image by another one during training, use '
                "LoadImageFromFile(ignore_empty=True, imdecode_backend='pillow')")
    return None
