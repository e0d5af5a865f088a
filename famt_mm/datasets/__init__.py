"""Datasets and transforms."""
from .transforms import (FAMT_META_KEYS, FAMTRandomResizedCrop,  # noqa: F401
                         FAMTRandomResizedCropAndInterpolationWithTwoPic)
from .loading import FAMTLoadImageFromFile  # noqa: F401
from .decode_crop import (DECODERS, FAMTDecodeRandomResizedCrop,  # noqa: F401
                          FAMTJPEGCropRecord, decode_crop_batch)
from .imagenet_like_jpegs import make_imagenet_like_jpegs, make_imagenet_like_root  # noqa: F401
from .synthetic_objects import (SHAPE_CLASSES, SyntheticObjects,  # noqa: F401
                                mask_cell_fraction, render_synthetic_object,
                                synthetic_label)
