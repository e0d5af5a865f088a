"""The oracle weight term of the CPU probe experiment: weights from the dataset's own object masks.

``object_coverage`` scores each patch by the share of it that its image's object covers
(``SyntheticObjects.patch_object_fraction``; relative coordinates, so the refresh's
whole-image resize leaves it unchanged). It tells a wrong split from wrong weights: FAMT's
split with weights that do mark the objects. For the experiment only: registered when
``famt_mm.analysis`` is imported, not one of the library's terms. It reads the batch's
training-set indices (``needs=('sample_idx', )``), which the refresh pass supplies.

Shapes: B images, L = h * w patches in raster order, N images in the training set.
"""
import copy
import json
from typing import Dict, Optional, Tuple

import torch

from famt_mm.models.weight_terms import TermContext, register_weight_term

from .hooks import object_covers

__all__ = ['object_coverage', 'dataset_object_covers']

#: (dataset config, grid) -> N x L coverage; each process renders a training set once
_COVERS: Dict[Tuple[str, Tuple[int, int]], torch.Tensor] = {}


def dataset_object_covers(dataset: dict, grid_hw: Tuple[int, int]) -> torch.Tensor:
    """N x L object coverage of every image of the dataset built from ``dataset`` (a
    ``SyntheticObjects`` config; its pipeline is dropped: coverage is of the whole image)."""
    from mmpretrain.registry import DATASETS
    cfg = copy.deepcopy(dict(dataset))
    cfg.pop('pipeline', None)
    cfg.setdefault('type', 'SyntheticObjects')
    key = (json.dumps(cfg, sort_keys=True, default=str), tuple(grid_hw))
    if key not in _COVERS:
        _COVERS[key] = object_covers(DATASETS.build(cfg), grid_hw).float().flatten(1)
    return _COVERS[key]


@register_weight_term('object_coverage', needs=('sample_idx', ))
def object_coverage(ctx: TermContext, dataset: Optional[dict] = None, invert: bool = False,
                    floor: float = 0.1) -> torch.Tensor:
    """Oracle: ``floor + (1 - floor) * c`` per patch, c its object coverage in [0, 1]
    (``1 - c`` with ``invert``: the background scores high). B x L.

    Args:
        dataset: the training set's config (``train_dataloader.dataset``), SyntheticObjects.
        invert: score the background instead of the object.
        floor: the weight of a patch with c = 0, in (0, 1]: every patch stays drawable, so
            the split's sets "tend to" follow the objects rather than equal them.
    """
    if dataset is None:
        raise ValueError("object_coverage needs term_args=dict(object_coverage=dict("
                         "dataset=<the training set's config>))")
    if not 0 < floor <= 1:
        raise ValueError(f'object_coverage: floor={floor} must lie in (0, 1]')
    covers = dataset_object_covers(dataset, ctx.grid_hw)
    if int(ctx.sample_idx.max()) >= covers.shape[0] or int(ctx.sample_idx.min()) < 0:
        raise IndexError(f'object_coverage: sample_idx {ctx.sample_idx.tolist()} outside the '
                         f'{covers.shape[0]} images of {dataset.get("type")}')
    c = covers[ctx.sample_idx.cpu()].to(ctx.tokens.device)
    return floor + (1 - floor) * ((1 - c) if invert else c)
