"""The FAMT algorithm contract: what a masked-image-modelling algorithm provides to take FAMT,
and what it gets for it. Declared here, checked when the model is built.

A FAMT algorithm is ``class FAMTX(FAMTAlgorithm, X)`` for an mmpretrain algorithm ``X``.

It provides (:data:`PROVIDED`; a class missing one is refused when built, naming it):

* ``plain_algorithm`` (class attribute): the mmpretrain type it extends, e.g. ``'MAE'``;
* ``famt_types`` (class attribute): what ``famt_mm.recipe.famt_model`` merges onto the
  inherited recipe's model, e.g. ``dict(type='FAMTMAE', backbone=dict(type='FAMTViT'))``;
* ``famt_term_context(inputs)``: its encoder's :class:`TermContext` for whole, normalised
  images B x 3 x H x W, on the patch grid (usually :func:`~.term_context.encoder_term_context`);
* ``famt_loss(inputs, data_samples, split)``: the losses of one step, where ``split`` is a
  :class:`FAMTSplit` of patch ids: masked patches carry the loss, thrown ones reach neither
  the encoder nor any decoder, regressor or loss, visible ones are encoded;
* ``famt_reconstruct(inputs, split)``: B x 3 x H x W pixels (visible patches as given,
  masked ones predicted) for the pictures, or None where the target is not pixels.

Optional: ``pretrain_only_keys`` (encoder state-dict keys, without ``backbone.``, that a
plain ViT does not have, dropped by checkpoint conversion, e.g. ``('mask_token', )``; a
module's name stands for all its keys, e.g. MFF's ``'proj_layers'``) and
``famt_unit_scale()`` (side of a mask unit in patches; 1 = per patch).

It gets (this mixin): the ``FAMTMaskGenerator`` built from ``mask_generator``; ``grid_hw``
(masking grid), ``patch_grid_hw``, ``unit_scale``, ``input_hw``; ``loss`` (draws the split,
then ``famt_loss``); ``famt_split``; ``compute_famt_weights`` (the refresh's weights, pooled
onto the masking grid); the refusal to train without ``FAMTWeightHook``; and through these,
``FAMTWeightHook``'s refresh and bank, the pictures, the benchmark, ``recipe.famt_model`` and
checkpoint conversion. docs/design.md, "Algorithms".
"""
from typing import Dict, List, NamedTuple, Optional, Tuple, Type

import torch
from mmpretrain.models.utils import TwoNormDataPreprocessor
from mmpretrain.registry import MODELS

from .famt_sampling import pool_to_units, units_to_patches
from .hook_guard import FAMTHookRequiredMixin
from .term_context import encoder_term_context
from .two_view_preprocessor import FAMTTwoNormDataPreprocessor
from .weight_terms import TermContext

__all__ = ['FAMTSplit', 'FAMTAlgorithm', 'PROVIDED', 'FAMT_ALGORITHMS', 'missing_contract',
           'check_famt_algorithm', 'famt_algorithm_for', 'pretrain_only_keys', 'is_pretrain_only',
           'is_famt_model',
           'check_famt_model']

#: Every FAMT algorithm class, by its registered name (filled by subclassing).
FAMT_ALGORITHMS: Dict[str, Type['FAMTAlgorithm']] = {}

#: What an algorithm must provide (see the module docstring).
PROVIDED = ('plain_algorithm', 'famt_types', 'famt_term_context', 'famt_loss',
            'famt_reconstruct')


class FAMTSplit(NamedTuple):
    """One step's sets, as PATCH ids in raster order on the patch grid (units expanded).

    masked: B x M; thrown: B x T; visible: B x V (M + T + V = L patches).
    units: the (masked, thrown, visible) ids on the masking grid, as drawn.
    """
    masked: torch.Tensor
    thrown: torch.Tensor
    visible: torch.Tensor
    units: Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class _Required:
    """Marks a contract member the algorithm has not provided."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, owner=None):
        return self


class FAMTAlgorithm(FAMTHookRequiredMixin):
    """Base of every FAMT algorithm; put it first: ``class FAMTMAE(FAMTAlgorithm, MAE)``.

    Args:
        mask_generator (dict): config of ``FAMTMaskGenerator``; its ratios are of mask units.
        **kwargs: the mmpretrain algorithm's arguments.
    """

    plain_algorithm = _Required('plain_algorithm')
    famt_types = _Required('famt_types')
    famt_term_context = _Required('famt_term_context')
    famt_loss = _Required('famt_loss')
    famt_reconstruct = _Required('famt_reconstruct')
    pretrain_only_keys: Tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        FAMT_ALGORITHMS[cls.__name__] = cls

    def __init__(self, *args, mask_generator: dict = dict(type='FAMTMaskGenerator'), **kwargs):
        check_famt_algorithm(type(self))
        super().__init__(*args, **kwargs)
        check_one_view_preprocessor(self)
        self.mask_generator = MODELS.build(mask_generator)
        embed = self.backbone.patch_embed.projection
        self.patch_size = tuple(int(p) for p in embed.kernel_size)
        self.patch_grid_hw = tuple(int(g) for g in self.backbone.patch_resolution)
        self.input_hw = (self.patch_grid_hw[0] * self.patch_size[0],
                         self.patch_grid_hw[1] * self.patch_size[1])
        img_size = tuple(getattr(self.backbone, 'img_size', self.input_hw))
        if img_size != self.input_hw:
            raise ValueError(
                f'{type(self).__name__}: the backbone input size {img_size} is not divisible by '
                f'the patch size {self.patch_size} (the patch embedding pads it to a '
                f'{self.patch_grid_hw} grid, so weight maps would not match the image); use a '
                'multiple of the patch size')
        self.unit_scale = int(self.famt_unit_scale())
        if self.unit_scale < 1 or any(g % self.unit_scale for g in self.patch_grid_hw):
            raise ValueError(f'{type(self).__name__}: a mask unit of {self.unit_scale} patches '
                             f'does not tile the {self.patch_grid_hw} patch grid')
        self.grid_hw = tuple(g // self.unit_scale for g in self.patch_grid_hw)
        h, w = self.grid_hw
        try:  # a set that would be empty stops here, not at the first step
            self.mask_generator.check_grid(h * w)
        except ValueError as e:
            what = ('patch grid ({} patches)' if self.unit_scale == 1
                    else 'mask-unit grid ({} units)')
            raise ValueError(f'{type(self).__name__}: the {h}x{w} {what.format(h * w)} does not '
                             f'fit the mask generator: {e}') from e

    def famt_unit_scale(self) -> int:
        """Side of a mask unit in patches (SimMIM: 2); 1 masks per patch."""
        return 1

    # -- what the algorithm gets ------------------------------------------------------------
    def backbone_term_context(self, inputs: torch.Tensor) -> TermContext:
        """The usual ``famt_term_context`` (``famt_term_context = backbone_term_context``): the
        encoder's own unmasked forward ``backbone(x, None)``, recorded at its last block."""
        return encoder_term_context(lambda x: self.backbone(x, None), self.backbone.layers[-1],
                                    inputs, self.patch_grid_hw, self.patch_size,
                                    self.mask_generator.weighting.needs)

    def famt_split(self, data_samples, batch_size: int, device,
                   generator: Optional[torch.Generator] = None) -> FAMTSplit:
        """This step's masked / thrown / visible sets (drawn by the mask generator)."""
        units = self.mask_generator.sample(data_samples, self.grid_hw, batch_size, device,
                                           generator=generator)
        return self.split_from_units(units)

    def split_from_units(self, units: Tuple[torch.Tensor, ...]) -> FAMTSplit:
        """A :class:`FAMTSplit` from ids on the masking grid (each B x K)."""
        if self.unit_scale == 1:
            return FAMTSplit(*units, units=tuple(units))
        patches = [units_to_patches(u, self.grid_hw[1], self.unit_scale) for u in units]
        return FAMTSplit(*patches, units=tuple(units))

    def loss(self, inputs, data_samples: List, **kwargs) -> Dict[str, torch.Tensor]:
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        split = self.famt_split(data_samples, images.shape[0], images.device)
        return self.famt_loss(inputs, data_samples, split)

    @torch.no_grad()
    def compute_famt_weights(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """FAMT weights of whole, un-augmented, normalised images B x 3 x H x W.

        Returns weights B x h x w on the masking grid (float32, > 0; a unit's weight is the
        mean of its patches') and the fallback flags B (maps that became uniform).
        """
        ctx = self.famt_context(inputs)
        weights, fallback = self.mask_generator.weighting.weights(ctx)
        weights = weights.view(-1, *self.patch_grid_hw)
        if self.unit_scale > 1:
            weights = pool_to_units(weights, self.unit_scale)
        return weights, fallback

    @torch.no_grad()
    def famt_context(self, inputs: torch.Tensor) -> TermContext:
        """``famt_term_context`` in eval mode (dropout, drop path off), mode restored."""
        was_training = self.training
        self.eval()
        try:
            return self.famt_term_context(inputs)
        finally:
            self.train(was_training)


def check_one_view_preprocessor(model) -> None:
    """Refuse mmpretrain's two-view preprocessor: the refresh and the pictures hand it one view
    of whole images, which it would split into two views, image by image."""
    pre = getattr(model, 'data_preprocessor', None)
    if isinstance(pre, TwoNormDataPreprocessor) and not isinstance(
            pre, FAMTTwoNormDataPreprocessor):
        raise ValueError(
            f"{type(model).__name__}: data_preprocessor is mmpretrain's TwoNormDataPreprocessor, "
            "which cannot take the weight refresh's one-view batches; write "
            "data_preprocessor = dict(type='FAMTTwoNormDataPreprocessor', ...) with the same "
            "arguments at the config's top level (configs/famt_beit_vit-b-p16_in1k.py does)")


def missing_contract(cls: type) -> List[str]:
    """The members of :data:`PROVIDED` that ``cls`` does not provide."""
    return [name for name in PROVIDED if isinstance(getattr(cls, name, None), _Required)]


def check_famt_algorithm(cls: type) -> type:
    """Return ``cls`` if it provides the whole contract, else raise ``TypeError`` naming
    what is missing."""
    missing = missing_contract(cls)
    if missing:
        raise TypeError(f'{cls.__name__} does not provide the FAMT algorithm contract: missing '
                        f'{", ".join(missing)} (famt_mm/models/famt_algorithm.py says what each '
                        'is)')
    return cls


def famt_algorithm_for(plain_type: str) -> Type[FAMTAlgorithm]:
    """The FAMT algorithm class extending the mmpretrain algorithm ``plain_type``."""
    found = [cls for cls in FAMT_ALGORITHMS.values()
             if not missing_contract(cls) and cls.plain_algorithm == plain_type]
    if not found:
        known = sorted({cls.plain_algorithm for cls in FAMT_ALGORITHMS.values()
                        if not missing_contract(cls)})
        raise KeyError(f'no FAMT algorithm for {plain_type!r}; FAMT exists for {known} '
                       '(docs/configs.md lists those that cannot take it, and why)')
    return found[0]


def pretrain_only_keys() -> Tuple[str, ...]:
    """The encoder keys every FAMT algorithm declares pre-training only, for conversion."""
    return tuple(sorted({key for cls in FAMT_ALGORITHMS.values()
                         for key in cls.pretrain_only_keys}))


def is_pretrain_only(key: str) -> bool:
    """Whether the encoder key ``key`` (without ``backbone.``) is, or lies in a module that
    is, declared pre-training only by a FAMT algorithm."""
    return any(key == name or key.startswith(name + '.') for name in pretrain_only_keys())


def is_famt_model(model) -> bool:
    """Whether ``model`` is a FAMT algorithm providing the whole contract."""
    return isinstance(model, FAMTAlgorithm) and not missing_contract(type(model))


def check_famt_model(model, user: str):
    """Return ``model`` if it is a FAMT algorithm providing the whole contract, else raise
    ``TypeError`` saying what ``user`` needs and, for a plain algorithm, its FAMT type."""
    name = type(model).__name__
    if not isinstance(model, FAMTAlgorithm):
        known = sorted(cls.__name__ for cls in FAMT_ALGORITHMS.values()
                       if not missing_contract(cls))
        hint = ''
        try:
            hint = f'; FAMT for {name} is {famt_algorithm_for(name).__name__}'
        except KeyError:
            pass
        raise TypeError(f'{user} needs a FAMT algorithm ({", ".join(known)}: a FAMTAlgorithm '
                        f'subclass, famt_mm/models/famt_algorithm.py), got {name}, which is not '
                        f'one{hint}')
    check_famt_algorithm(type(model))
    return model
