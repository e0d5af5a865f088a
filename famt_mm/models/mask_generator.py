"""``FAMTMaskGenerator``: stored weight maps -> masked / thrown / visible ids, every step.

It samples; which weights (terms, combination) is its ``weighting`` (models/weighting.py)."""
import numbers
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..bank import QUANT_DTYPES, WeightBank
from .famt_sampling import map_weights_to_crop, plackett_luce_split, split_counts
from .weighting import FAMTWeighting

_FLIP_CODES = {'horizontal': 0, 'vertical': 1, 'diagonal': 2}


@MODELS.register_module()
class FAMTMaskGenerator(BaseModule):
    """Chooses which patches are masked, thrown and visible (docs/method.md sections 1, 2, 5).

    Two phases, switched by ``FAMTWeightHook`` through :attr:`famt_active`:

    * random (before ``start_epoch``): plain MAE masking, ``random_mask_ratio``
      masked, nothing thrown, every patch equally likely; with ``random_throw_ratio``
      set, a further ``random_throw_ratio`` of the patches, also drawn uniformly, is
      thrown (the warm-up throw, docs/method.md section 5);
    * FAMT: per-image weight maps from the bank (set with :meth:`set_bank`) are
      mapped onto each crop's patch grid, and a Plackett-Luce draw takes
      ``mask_ratio`` of the patches as masked and the next ``throw_ratio`` as
      thrown; the rest stay visible.

    The bank (a ``famt_mm.bank.WeightBank``, shared with the hook) is plain state, not
    a buffer: it is not broadcast by DDP every step and not part of the model's state
    dict; the hook saves it in checkpoints.

    Args:
        mask_ratio (float): share of patches masked (reconstructed). 0.45.
        throw_ratio (float): share of patches thrown away. 0.40.
        random_mask_ratio (float): MAE masking ratio of the random phase. 0.75.
        random_throw_ratio (float, optional): share of patches thrown in the random
            phase, drawn uniformly like the masked ones (FAMT's split with all-equal
            weights). None or 0 (default): nothing thrown, the paper's schedule. With
            ``random_mask_ratio=mask_ratio`` and ``random_throw_ratio=throw_ratio``
            (0.45 / 0.40) the warm-up has FAMT's token budget.
        terms (Sequence[str]): the weight terms, by their registered names
            (famt_mm/models/weight_terms.py): 'attention', 'attention_column',
            'frequency', 'frequency_2d', 'gradient', ... ('attention', 'frequency').
        combine (str): 'product' (default: A * F) or 'sum' (each term over its mean).
        term_args (dict, optional): keyword arguments per term, e.g.
            ``dict(frequency=dict(cutoff=0.15))``.
        bank_dtype (str): 'float16' (2 bytes per patch) or 'uint8' (1 byte).
        eps (float): weight floor, relative to each map's maximum.
    """

    def __init__(self, mask_ratio: float = 0.45, throw_ratio: float = 0.40,
                 random_mask_ratio: float = 0.75, random_throw_ratio: Optional[float] = None,
                 terms: Sequence[str] = ('attention', 'frequency'), combine: str = 'product',
                 term_args: Optional[Dict[str, dict]] = None,
                 bank_dtype: str = 'float16', eps: float = 1e-6, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('mask_ratio', mask_ratio), ('throw_ratio', throw_ratio),
                            ('random_mask_ratio', random_mask_ratio), ('eps', eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'FAMTMaskGenerator: {name}={value!r} is a '
                                 f'{type(value).__name__}, not a number: write it without '
                                 'quotes')
        for name, value in (('mask_ratio', mask_ratio), ('throw_ratio', throw_ratio),
                            ('random_mask_ratio', random_mask_ratio)):
            if not 0 <= value < 1:
                raise ValueError(f'FAMTMaskGenerator: {name}={value} must lie in [0, 1)')
        if mask_ratio + throw_ratio >= 1:
            raise ValueError(f'FAMTMaskGenerator: mask_ratio + throw_ratio = '
                             f'{mask_ratio} + {throw_ratio} >= 1 leaves no visible patch')
        random_throw_ratio = _checked_random_throw_ratio(random_throw_ratio, random_mask_ratio)
        self.weighting = FAMTWeighting(terms, combine, term_args, eps, owner='FAMTMaskGenerator')
        if bank_dtype not in QUANT_DTYPES:
            raise ValueError(f'FAMTMaskGenerator: bank_dtype {bank_dtype!r} not in {QUANT_DTYPES}')
        self.mask_ratio = mask_ratio
        self.throw_ratio = throw_ratio
        self.random_mask_ratio = random_mask_ratio
        self.random_throw_ratio = random_throw_ratio  # a float, 0.0 when off
        self.bank_dtype = bank_dtype
        self.famt_active = False
        self.hook_attached = False  # set by FAMTWeightHook.before_train (models/hook_guard.py)
        self._bank: Optional[WeightBank] = None

    def check_grid(self, num_patches: int) -> Tuple[Tuple[int, int, int], Tuple[int, int, int]]:
        """Counts of both phases for ``num_patches``; raises on an empty set."""
        return (split_counts(num_patches, self.random_mask_ratio, self.random_throw_ratio),
                split_counts(num_patches, self.mask_ratio, self.throw_ratio))

    # -- bank ----------------------------------------------------------------
    def set_bank(self, bank: Optional[WeightBank]) -> None:
        """Read the weight maps of the FAMT phase from ``bank`` (famt_mm/bank) from now on."""
        self._bank = bank

    @property
    def bank(self) -> Optional[WeightBank]:
        return self._bank

    # -- sampling (training step) ----------------------------------------------
    def batch_meta(self, data_samples) -> torch.Tensor:
        """B x 6 float64 on the CPU: sample_idx, crop box (x1, y1, x2, y2), flip code (-1: not
        flipped, else ``_FLIP_CODES``). The one Python pass over the samples per step."""
        try:
            meta = [(s.sample_idx, *s.famt_crop,
                     _FLIP_CODES.get(s.get('flip_direction'), 0) if s.get('flip', False) else -1)
                    for s in data_samples]
        except AttributeError as e:
            raise KeyError(
                'FAMT masking needs `sample_idx` and `famt_crop` in every data sample: use '
                '`FAMTRandomResizedCrop` and `PackInputs(meta_keys=famt_mm.datasets.'
                f'FAMT_META_KEYS)` in the training pipeline ({e})') from e
        # float64 carries the indices exactly (< 2^53) and the boxes as float32 would
        return torch.tensor(meta, dtype=torch.float64)

    def crop_weights(self, data_samples, grid_hw: Sequence[int], device) -> torch.Tensor:
        """The bank's maps of this batch on each sample's crop grid. B x h x w."""
        # One pass over the samples, one host -> device copy, no device -> host sync.
        on_host = meta = self.batch_meta(data_samples)
        top = int(on_host[:, 0].max())
        if top >= self._bank.num_samples:
            raise IndexError(f'sample_idx {top} is outside the weight bank of '
                             f'{self._bank.num_samples} images: the bank does not match the '
                             'dataset')
        if torch.device(device).type == 'cuda':
            meta = meta.pin_memory()
        meta = meta.to(device, non_blocking=True)
        codes = meta[:, 5].long()
        # a file bank gathers on the host from the CPU index, an inline one on the device
        idx = (on_host if self._bank.rows_on_host else meta)[:, 0].long()
        maps = self._bank.get_weights(idx, device)  # decoded by the bank: B x h x w float32
        return map_weights_to_crop(maps, meta[:, 1:5].float(), tuple(grid_hw), flip=codes >= 0,
                                   flip_direction=codes.clamp_min(0))

    def sample(self, data_samples, grid_hw: Sequence[int], batch_size: int, device,
               generator: Optional[torch.Generator] = None
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids_masked B x M, ids_thrown B x T, ids_visible B x V for this batch.

        Runs outside autocast: the crop mapping and the draw are the same in an AMP
        run as in fp32.
        """
        num_patches = int(grid_hw[0] * grid_hw[1])
        with torch.autocast(torch.device(device).type, enabled=False):
            if not self.famt_active:  # FAMT's draw with all-equal weights: uniform sets
                n_mask, n_throw, _ = split_counts(num_patches, self.random_mask_ratio,
                                                  self.random_throw_ratio)
                weights = torch.ones(batch_size, num_patches, device=device)
            else:
                if self._bank is None or not self._bank.filled:
                    raise RuntimeError('FAMT phase without a weight bank: FAMTWeightHook must '
                                       'refresh (or restore) the bank before FAMT masking starts')
                n_mask, n_throw, _ = split_counts(num_patches, self.mask_ratio,
                                                  self.throw_ratio)
                weights = self.crop_weights(data_samples, grid_hw, device).flatten(1)
            return plackett_luce_split(weights, n_mask, n_throw, generator=generator)

    def extra_repr(self) -> str:
        return (f'mask_ratio={self.mask_ratio}, throw_ratio={self.throw_ratio}, '
                f'random_mask_ratio={self.random_mask_ratio}, '
                f'random_throw_ratio={self.random_throw_ratio}, weighting={self.weighting}, '
                f'bank_dtype={self.bank_dtype!r}')


def _checked_random_throw_ratio(random_throw_ratio, random_mask_ratio) -> float:
    """``random_throw_ratio`` as a float (None -> 0.0, off); raises naming the setting."""
    if random_throw_ratio is None:
        return 0.0
    # bool is an int, but a flag here is a mistake, not a ratio
    if isinstance(random_throw_ratio, bool) or not isinstance(random_throw_ratio, numbers.Real):
        raise TypeError(f'FAMTMaskGenerator: random_throw_ratio must be None or a float in '
                        f'[0, 1), got {type(random_throw_ratio).__name__} '
                        f'{random_throw_ratio!r}')
    random_throw_ratio = float(random_throw_ratio)
    if not 0 <= random_throw_ratio < 1:
        raise ValueError(f'FAMTMaskGenerator: random_throw_ratio={random_throw_ratio} must lie '
                         'in [0, 1) (None or 0: nothing thrown before start_epoch)')
    if random_mask_ratio + random_throw_ratio >= 1:
        raise ValueError(
            f'FAMTMaskGenerator: random_mask_ratio + random_throw_ratio = {random_mask_ratio} + '
            f'{random_throw_ratio} >= 1 leaves no visible patch in the random phase; lower '
            'random_mask_ratio too (e.g. random_mask_ratio=0.45, random_throw_ratio=0.40 is '
            "FAMT's budget)")
    return random_throw_ratio
