"""``FAMTMaskGenerator``: weights -> masked / thrown / visible patch ids, every step."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from .famt_sampling import map_weights_to_crop, plackett_luce_split, split_counts
from .famt_weights import (COMBINE_MODES, QUANT_DTYPES, cls_attention_term, column_mean_attention_term,
                           combine_terms, dequantize_weights, frequency_term, frequency_term_2d,
                           sanitize_weights)

ATTENTION_MODES = ('cls', 'cls+column')
FREQUENCY_MODES = ('1d', '2d')
_FLIP_CODES = {'horizontal': 0, 'vertical': 1, 'diagonal': 2}


@MODELS.register_module()
class FAMTMaskGenerator(BaseModule):
    """Chooses which patches are masked, thrown and visible (spec sections 1, 2, 4).

    Two phases, switched by ``FAMTWeightHook`` through :attr:`famt_active`:

    * random (before ``start_epoch``): plain MAE masking, ``random_mask_ratio``
      masked, nothing thrown, every patch equally likely;
    * FAMT: per-image weight maps from the bank (set with :meth:`set_bank`) are
      mapped onto each crop's patch grid, and a Plackett-Luce draw takes
      ``mask_ratio`` of the patches as masked and the next ``throw_ratio`` as
      thrown; the rest stay visible.

    The bank is plain state, not a buffer: it is not broadcast by DDP every step
    and not part of the model's state dict; the hook saves it in checkpoints.

    Args:
        mask_ratio (float): share of patches masked (reconstructed). 0.45.
        throw_ratio (float): share of patches thrown away. 0.40.
        random_mask_ratio (float): MAE masking ratio of the random phase. 0.75.
        combine (str): 'product' (A * F), 'attention', 'frequency' or 'sum'.
        attention (str): 'cls' (CLS row) or 'cls+column' (adds the column mean).
        frequency (str): '1d' (FFT along the token axis) or '2d' (over the grid).
        cutoff (float): the Gaussian low-pass cutoff. 0.15.
        bank_dtype (str): 'float16' (2 bytes per patch) or 'uint8' (1 byte).
        eps (float): weight floor, relative to each map's maximum.
    """

    def __init__(self, mask_ratio: float = 0.45, throw_ratio: float = 0.40,
                 random_mask_ratio: float = 0.75, combine: str = 'product',
                 attention: str = 'cls', frequency: str = '1d', cutoff: float = 0.15,
                 bank_dtype: str = 'float16', eps: float = 1e-6, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('mask_ratio', mask_ratio), ('throw_ratio', throw_ratio),
                            ('random_mask_ratio', random_mask_ratio)):
            if not 0 <= value < 1:
                raise ValueError(f'FAMTMaskGenerator: {name}={value} must lie in [0, 1)')
        if mask_ratio + throw_ratio >= 1:
            raise ValueError(f'FAMTMaskGenerator: mask_ratio + throw_ratio = '
                             f'{mask_ratio} + {throw_ratio} >= 1 leaves no visible patch')
        if combine not in COMBINE_MODES:
            raise ValueError(f'FAMTMaskGenerator: unknown combine mode {combine!r}; '
                             f'choose one of {COMBINE_MODES}')
        if attention not in ATTENTION_MODES:
            raise ValueError(f'FAMTMaskGenerator: unknown attention mode {attention!r}; '
                             f'choose one of {ATTENTION_MODES}')
        if frequency not in FREQUENCY_MODES:
            raise ValueError(f'FAMTMaskGenerator: unknown frequency mode {frequency!r}; '
                             f'choose one of {FREQUENCY_MODES}')
        if not 0 < cutoff:
            raise ValueError(f'FAMTMaskGenerator: cutoff={cutoff} must be > 0')
        if not 0 < eps < 1:
            raise ValueError(f'FAMTMaskGenerator: eps={eps} must lie in (0, 1): it is the '
                             'weight floor relative to each map maximum (log(0) otherwise)')
        if bank_dtype not in QUANT_DTYPES:
            raise ValueError(f'FAMTMaskGenerator: bank_dtype {bank_dtype!r} not in {QUANT_DTYPES}')
        self.mask_ratio = mask_ratio
        self.throw_ratio = throw_ratio
        self.random_mask_ratio = random_mask_ratio
        self.combine = combine
        self.attention = attention
        self.frequency = frequency
        self.cutoff = cutoff
        self.bank_dtype = bank_dtype
        self.eps = eps
        self.famt_active = False
        self.hook_attached = False  # set by FAMTWeightHook.before_train (models/hook_guard.py)
        self._bank: Optional[torch.Tensor] = None
        self._bank_on_device: Optional[torch.Tensor] = None

    def check_grid(self, num_patches: int) -> Tuple[Tuple[int, int, int], Tuple[int, int, int]]:
        """Counts of both phases for ``num_patches``; raises on an empty set."""
        return (split_counts(num_patches, self.random_mask_ratio, 0.0),
                split_counts(num_patches, self.mask_ratio, self.throw_ratio))

    # -- weights (refresh pass) ------------------------------------------------
    def weights_from_terms(self, attn_cls: torch.Tensor, attn_full: Optional[torch.Tensor],
                           tokens: torch.Tensor, grid_hw: Sequence[int]
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Combine the attention and frequency terms into sanitised weights.

        Args:
            attn_cls: B x H x L; attn_full: B x H x N x N or None; tokens: B x L x C.
        Returns:
            weights B x L (float32, > 0) and fallback flags B (bool).
        """
        attn = cls_attention_term(attn_cls)
        if self.attention == 'cls+column':
            attn = 0.5 * (attn + column_mean_attention_term(attn_full))
        if self.frequency == '1d':
            freq = frequency_term(tokens, self.cutoff)
        else:
            freq = frequency_term_2d(tokens, tuple(grid_hw), self.cutoff)
        return sanitize_weights(combine_terms(attn, freq, self.combine), self.eps)

    # -- bank ----------------------------------------------------------------
    def set_bank(self, bank: Optional[torch.Tensor]) -> None:
        """Use ``bank`` (N x h x w, quantised as by ``quantize_weights``) from now on."""
        self._bank = bank
        self._bank_on_device = None

    @property
    def bank(self) -> Optional[torch.Tensor]:
        return self._bank

    def _device_bank(self, device) -> torch.Tensor:
        if self._bank_on_device is None or self._bank_on_device.device != device:
            self._bank_on_device = self._bank.to(device, non_blocking=True)
        return self._bank_on_device

    # -- sampling (training step) ----------------------------------------------
    def crop_weights(self, data_samples, grid_hw: Sequence[int], device) -> torch.Tensor:
        """The bank's maps of this batch on each sample's crop grid. B x h x w."""
        # One pass over the samples, one host -> device copy, no device -> host sync.
        try:
            meta = [(s.sample_idx, *s.famt_crop,
                     _FLIP_CODES.get(s.get('flip_direction'), 0) if s.get('flip', False) else -1)
                    for s in data_samples]
        except AttributeError as e:
            raise KeyError(
                'FAMT masking needs `sample_idx` and `famt_crop` in every data sample: use '
                '`FAMTRandomResizedCrop` and `PackInputs(meta_keys=famt_mm.datasets.'
                f'FAMT_META_KEYS)` in the training pipeline ({e})') from e
        bank = self._device_bank(device)
        top = max(m[0] for m in meta)
        if top >= bank.shape[0]:
            raise IndexError(f'sample_idx {top} is outside the weight bank of '
                             f'{bank.shape[0]} images: the bank does not match the dataset')
        # float64 carries the indices exactly (< 2^53) and the boxes as float32 would
        meta = torch.tensor(meta, dtype=torch.float64)
        if torch.device(device).type == 'cuda':
            meta = meta.pin_memory()
        meta = meta.to(device, non_blocking=True)
        idx, codes = meta[:, 0].long(), meta[:, 5].long()
        maps = dequantize_weights(bank[idx])
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
            if not self.famt_active:
                n_mask, n_throw, _ = split_counts(num_patches, self.random_mask_ratio, 0.0)
                weights = torch.ones(batch_size, num_patches, device=device)
            else:
                if self._bank is None:
                    raise RuntimeError('FAMT phase without a weight bank: FAMTWeightHook must '
                                       'refresh (or restore) the bank before FAMT masking starts')
                n_mask, n_throw, _ = split_counts(num_patches, self.mask_ratio,
                                                  self.throw_ratio)
                weights = self.crop_weights(data_samples, grid_hw, device).flatten(1)
            return plackett_luce_split(weights, n_mask, n_throw, generator=generator)

    def extra_repr(self) -> str:
        return (f'mask_ratio={self.mask_ratio}, throw_ratio={self.throw_ratio}, '
                f'random_mask_ratio={self.random_mask_ratio}, combine={self.combine!r}, '
                f'attention={self.attention!r}, frequency={self.frequency!r}, '
                f'cutoff={self.cutoff}, bank_dtype={self.bank_dtype!r}')
