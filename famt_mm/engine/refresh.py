"""The refresh pass: every training image, whole and un-augmented, through the current encoder.

``build_refresh_loader`` gives this rank's shard of the training set through a
``GuardedRefreshDataset``; ``compute_shard_maps`` turns it into (dataset index, quantised map)
pairs. Gathering them into the bank is ``famt_mm.bank``'s job, scheduling ``FAMTWeightHook``'s.
See docs/method.md sections 1 and 5.
"""
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmengine.dataset import default_collate
from mmengine.dist import get_dist_info
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample

from ..bank.encoding import BANK_DTYPES, dequantize_weights, quantize_weights
from ..datasets.transforms import whole_image_pipeline


class GuardedRefreshDataset(torch.utils.data.Dataset):
    """Wraps the refresh dataset so that an unreadable image can be skipped.

    Reads through ``prepare_data`` where the dataset has it: mmengine's
    ``BaseDataset.__getitem__`` would silently return ANOTHER random image when
    the pipeline gives None (``LoadImageFromFile(ignore_empty=True)``), and that
    image's map would land in the wrong row. With ``on_bad_image='skip'`` a failing
    sample becomes a black placeholder flagged ``famt_bad`` (its map is set uniform and
    it is counted and named in the log). A packed ``sample_idx`` that is not the
    dataset position is a configuration error and always raises.

    Args:
        dataset: the training set, built with the refresh pipeline.
        on_bad_image (str): 'fail' or 'skip'.
        img_hw (tuple[int, int]): (H, W) of the placeholder image.
    """

    def __init__(self, dataset, on_bad_image: str, img_hw: Tuple[int, int]):
        self.dataset = dataset
        self.on_bad_image = on_bad_image
        self.img_hw = img_hw

    def __len__(self):
        return len(self.dataset)

    def _path(self, idx) -> str:
        try:
            return str(self.dataset.get_data_info(idx).get('img_path', '?'))
        except Exception:  # noqa: BLE001  (the path is only for the message)
            return '?'

    def __getitem__(self, idx):
        try:
            if hasattr(self.dataset, 'prepare_data'):
                if not getattr(self.dataset, '_fully_initialized', True):
                    self.dataset.full_init()
                data = self.dataset.prepare_data(idx)
            else:
                data = self.dataset[idx]
            if data is None:
                raise ValueError('the pipeline returned None, e.g. LoadImageFromFile('
                                 'ignore_empty=True) could not read the file')
        except Exception as e:  # noqa: BLE001  (any reader / decoder error)
            if self.on_bad_image == 'fail':
                raise RuntimeError(
                    f'FAMT refresh: cannot read sample {idx} ({self._path(idx)}): '
                    f'{type(e).__name__}: {e}. Fix or remove the file, or set '
                    "FAMTWeightHook(on_bad_image='skip') to use uniform weights for it") from e
            sample = DataSample(metainfo=dict(
                sample_idx=idx, famt_bad=True,
                famt_error=f'{self._path(idx)}: {type(e).__name__}: {e}'))
            return dict(inputs=torch.zeros(3, *self.img_hw, dtype=torch.uint8),
                        data_samples=sample)
        packed = data['data_samples'].get('sample_idx') if 'data_samples' in data else None
        if packed is None:
            raise KeyError("FAMT refresh: the refresh pipeline's PackInputs must keep "
                           "'sample_idx' in meta_keys")
        if int(packed) != idx:
            raise ValueError(
                f'FAMT refresh: dataset position {idx} packs sample_idx={packed}; the weight '
                'bank is indexed by sample_idx, so it must equal the position in the training '
                'set (dataset wrappers such as ConcatDataset / RepeatDataset break this)')
        return data


def build_refresh_loader(train_dataloader_cfg: dict, input_hw: Tuple[int, int],
                         on_bad_image: str, pipeline: Optional[List[dict]] = None,
                         batch_size: Optional[int] = None,
                         num_workers: Optional[int] = None) -> torch.utils.data.DataLoader:
    """This rank's shard (indices ``rank, rank + world, ...``, no padding) of the training set.

    Args:
        train_dataloader_cfg: the config's ``train_dataloader`` (its dataset is rebuilt).
        input_hw: (H, W) the model takes (``model.input_hw``).
        on_bad_image: see :class:`GuardedRefreshDataset`.
        pipeline: refresh pipeline; default: :func:`whole_image_pipeline` of the training one.
        batch_size, num_workers: default: the training loader's.
    """
    cfg = copy.deepcopy(train_dataloader_cfg)
    ds_cfg = cfg['dataset']
    if pipeline is None:
        pipeline = whole_image_pipeline(ds_cfg.get('pipeline', []), input_hw)
    ds_cfg['pipeline'] = pipeline
    dataset = GuardedRefreshDataset(DATASETS.build(ds_cfg), on_bad_image, input_hw)
    rank, world = get_dist_info()
    indices = list(range(rank, len(dataset), world))  # shard, no padding
    num_workers = cfg.get('num_workers', 0) if num_workers is None else num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size or cfg.get('batch_size', 32),
        sampler=indices, num_workers=num_workers, collate_fn=default_collate,
        pin_memory=torch.cuda.is_available())


@dataclass
class ShardMaps:
    """What one rank's refresh pass produced."""
    idx: torch.Tensor  # K (long): dataset indices
    maps: torch.Tensor  # K x h x w: quantised maps, CPU
    fallback: List[int] = field(default_factory=list)  # maps that fell back to uniform
    bad: List[Tuple[int, str]] = field(default_factory=list)  # unreadable: (index, error)


def training_amp_dtype(optim_wrapper) -> Optional[torch.dtype]:
    """The autocast dtype the training runs in, read from the optim wrapper itself: an
    mmengine ``AmpOptimWrapper``'s ``cast_dtype`` (None there means fp16, autocast's
    default on CUDA); in an ``OptimWrapperDict`` the first AMP wrapper's; None without AMP."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
    wrappers = optim_wrapper.values() if isinstance(optim_wrapper, OptimWrapperDict) \
        else [optim_wrapper]
    for wrapper in wrappers:
        if isinstance(wrapper, AmpOptimWrapper):
            return wrapper.cast_dtype or torch.float16
    return None


@torch.no_grad()
def compute_shard_maps(model, loader, bank_dtype: str,
                       amp_dtype: Optional[torch.dtype] = None,
                       progress: Optional[Callable[[int, int], None]] = None) -> ShardMaps:
    """Weight maps of every image of ``loader`` with ``model.compute_famt_weights``.

    Args:
        model: a FAMT algorithm (famt_mm/models/famt_algorithm.py).
        loader: from :func:`build_refresh_loader`.
        bank_dtype: 'float16' or 'uint8' (``quantize_weights``).
        amp_dtype: the encoder runs under autocast in this dtype on the model's device (the
            training's, :func:`training_amp_dtype`); None: no autocast. The CLS attention
            row and the weight terms are computed in float32 either way.
        progress: called with (images done, images of this shard) after each batch.
    """
    if isinstance(amp_dtype, bool):  # the former flag: bf16 on CUDA
        amp_dtype = torch.bfloat16 if amp_dtype else None
    device_type = next(model.parameters()).device.type
    img_hw = tuple(model.input_hw)
    grid = tuple(model.grid_hw)
    local = len(loader.sampler)
    idx_parts, map_parts, fallback, bad = [], [], [], []
    for i, data in enumerate(loader):
        data = model.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        if tuple(inputs.shape[-2:]) != img_hw:
            raise ValueError(
                f'FAMT refresh: the refresh pipeline gives {tuple(inputs.shape[-2:])} '
                f'images but the model takes {img_hw}; end it with a Resize to the input '
                'size (no crop)')
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None), \
                model.mask_generator.weighting.given_sample_idx(s.sample_idx for s in samples):
            weights, fb = model.compute_famt_weights(inputs)
        bad_mask = torch.tensor([bool(s.get('famt_bad', False)) for s in samples],
                                device=weights.device)
        if bad_mask.any():
            weights[bad_mask] = 1.0
            bad += [(s.sample_idx, s.famt_error) for s in samples if s.get('famt_bad', False)]
        fallback += [s.sample_idx for s, f in zip(samples, (fb & ~bad_mask).tolist()) if f]
        idx_parts.append(torch.tensor([s.sample_idx for s in samples], dtype=torch.long))
        map_parts.append(quantize_weights(weights, bank_dtype).cpu())
        if progress is not None:
            progress(min((i + 1) * loader.batch_size, local), local)
    idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long)
    maps = torch.cat(map_parts) if map_parts else torch.zeros(0, *grid,
                                                              dtype=BANK_DTYPES[bank_dtype])
    return ShardMaps(idx, maps, fallback, bad)


def map_statistics(maps: torch.Tensor) -> Tuple[float, float]:
    """Mean normalised entropy of the maps (1 = uniform) and mean share of the weight mass in
    each map's top 20% cells. maps: N x h x w, quantised; over at most 65536 evenly spaced
    maps (all of them for small sets), so a web-scale bank is never dequantised whole."""
    maps = maps[::max(1, math.ceil(maps.shape[0] / 65536))]
    w = dequantize_weights(maps).flatten(1)
    p = w / w.sum(1, keepdim=True)
    entropy = float((-(p * p.clamp_min(1e-12).log()).sum(1) / math.log(p.shape[1])).mean())
    k = max(1, int(round(0.2 * p.shape[1])))
    return entropy, float(p.topk(k, dim=1).values.sum(1).mean())


class Progress:
    """Progress lines of a refresh pass (rank 0, every ``interval`` batches and at the end)."""

    def __init__(self, logger, epoch: int, interval: int, batch_size: int):
        self.logger, self.epoch = logger, epoch
        self.every = interval * batch_size
        self.t0 = time.time()

    def __call__(self, done: int, local: int) -> None:
        if get_dist_info()[0] != 0 or (done % self.every and done != local):
            return
        rate = done / max(time.time() - self.t0, 1e-9)
        self.logger.info(f'FAMT refresh (epoch {self.epoch}): {done}/{local} images on this '
                         f'rank, {rate:.1f} img/s, ETA {(local - done) / max(rate, 1e-9):.0f}s')


__all__: Sequence[str] = ['GuardedRefreshDataset', 'build_refresh_loader', 'ShardMaps',
                          'training_amp_dtype', 'compute_shard_maps', 'map_statistics', 'Progress']
