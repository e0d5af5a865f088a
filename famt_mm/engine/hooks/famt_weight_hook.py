"""``FAMTWeightHook``: the random -> FAMT switch and the periodic weight refresh."""
import copy
import hashlib
import math
import time
from typing import List, Optional

import torch
from mmengine.dataset import default_collate
from mmengine.dist import all_gather, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import DATASETS, HOOKS
from mmpretrain.structures import DataSample

from ...datasets.transforms import FAMTRandomResizedCrop
from ...models.famt_weights import quantize_weights

BANK_FORMAT_VERSION = 1
# Transforms that change an image at random: not allowed in the refresh pipeline.
_AUGMENTING = ('Random', 'ColorJitter', 'RandAugment', 'AutoAugment', 'GaussianBlur',
               'Solarize', 'Posterize', 'Mixup', 'CutMix', 'Lighting')


def _type_name(t) -> str:
    return t['type'] if isinstance(t, dict) else type(t).__name__


def dataset_fingerprint(dataset) -> str:
    """Identity of a dataset's sample list (order included), cheap for ImageNet."""
    h = hashlib.sha1(str(len(dataset)).encode())
    if getattr(dataset, 'serialize_data', False) and getattr(dataset, 'data_bytes', None) is not None:
        h.update(memoryview(dataset.data_bytes).cast('B'))
    elif getattr(dataset, 'data_list', None):
        for info in dataset.data_list:
            h.update(str(info.get('img_path', info.get('sample_idx', ''))).encode())
            h.update(str(info.get('gt_label', '')).encode())
    return h.hexdigest()


class _GuardedDataset(torch.utils.data.Dataset):
    """Wraps the refresh dataset so that an unreadable image can be skipped.

    With ``skip`` a failing sample becomes a black placeholder flagged
    ``famt_bad`` (its map is set uniform and it is counted and named in the log).
    """

    def __init__(self, dataset, on_bad_image: str, img_hw):
        self.dataset = dataset
        self.on_bad_image = on_bad_image
        self.img_hw = img_hw

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        try:
            data = self.dataset[idx]
            if data is None:
                raise ValueError('the pipeline returned None')
            return data
        except Exception as e:  # noqa: BLE001  (any reader / decoder error)
            if self.on_bad_image == 'fail':
                raise RuntimeError(
                    f'FAMT refresh: cannot read sample {idx} ({e}); set '
                    "FAMTWeightHook(on_bad_image='skip') to use uniform weights for it") from e
            sample = DataSample(metainfo=dict(sample_idx=idx, famt_bad=True,
                                              famt_error=f'{type(e).__name__}: {e}'))
            return dict(inputs=torch.zeros(3, *self.img_hw, dtype=torch.uint8),
                        data_samples=sample)


@HOOKS.register_module()
class FAMTWeightHook(Hook):
    """Switch from random to FAMT masking and keep the weight bank fresh.

    Before epoch ``start_epoch`` (i.e. after that many completed epochs) and then
    every ``interval`` epochs, one pass over the whole training set (each rank
    its shard, gathered by dataset index) computes every image's weight map with
    the current encoder on the whole image resized to the input size. Never
    after the last epoch. The bank (N x h x w, ``bank_dtype`` of the mask
    generator: 2 or 1 bytes per patch) is kept on the model side and saved in
    checkpoints, so ``--resume`` restores bank and phase exactly.

    Args:
        start_epoch (int): first FAMT epoch. 40.
        interval (int): epochs between refreshes. 40.
        refresh_pipeline (list, optional): pipeline of the refresh pass. Default:
            the training pipeline's loading steps, then ``Resize`` to the input
            size and ``PackInputs``. Must not augment.
        batch_size (int, optional): refresh batch size per rank (default: the
            training batch size).
        num_workers (int, optional): refresh loader workers (default: training's).
        on_bad_image (str): 'fail' (stop with the sample named) or 'skip'
            (uniform weights for it, counted and named in the log).
        on_mismatch (str): when a restored bank does not match the dataset:
            'error' (stop with a message) or 'recompute' (refresh before the
            next FAMT epoch).
        log_interval (int): refresh batches between progress lines.
    """

    priority = 'NORMAL'

    def __init__(self, start_epoch: int = 40, interval: int = 40,
                 refresh_pipeline: Optional[List[dict]] = None,
                 batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                 on_bad_image: str = 'fail', on_mismatch: str = 'error',
                 log_interval: int = 50):
        if not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f'FAMTWeightHook: start_epoch={start_epoch} must be an int >= 0')
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'FAMTWeightHook: interval={interval} must be an int >= 1')
        if on_bad_image not in ('fail', 'skip'):
            raise ValueError(f"FAMTWeightHook: on_bad_image={on_bad_image!r}, use 'fail' or 'skip'")
        if on_mismatch not in ('error', 'recompute'):
            raise ValueError(
                f"FAMTWeightHook: on_mismatch={on_mismatch!r}, use 'error' or 'recompute'")
        if refresh_pipeline is not None:
            bad = [_type_name(t) for t in refresh_pipeline
                   if any(a in _type_name(t) for a in _AUGMENTING)]
            if bad:
                raise ValueError(f'FAMTWeightHook: the refresh pipeline must not augment, but '
                                 f'has {bad}; weights are computed on the whole image')
        self.start_epoch = start_epoch
        self.interval = interval
        self.refresh_pipeline = refresh_pipeline
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.on_bad_image = on_bad_image
        self.on_mismatch = on_mismatch
        self.log_interval = log_interval
        self.bank: Optional[torch.Tensor] = None
        self.bank_epoch: Optional[int] = None
        self.refresh_epochs_done: List[int] = []  # this process's refreshes, for tests/logs
        self._refresh_loader = None
        self._fingerprint = None

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'mask_generator') or not hasattr(model, 'compute_famt_weights'):
            raise TypeError(f'FAMTWeightHook needs a FAMTMAE model, got {type(model).__name__}')
        return model

    def is_refresh_epoch(self, epoch: int, max_epochs: int) -> bool:
        """Whether the bank is refreshed before ``epoch`` (0-based)."""
        return (self.start_epoch <= epoch < max_epochs
                and (epoch - self.start_epoch) % self.interval == 0)

    def _img_hw(self, model):
        ps = model.backbone.patch_embed.projection.kernel_size
        return model.grid_hw[0] * ps[0], model.grid_hw[1] * ps[1]

    def _check_train_pipeline(self, runner):
        dataset = runner.train_dataloader.dataset
        transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', None)
        if transforms is None:
            return  # a wrapped dataset: checked per batch by the mask generator
        if not any(isinstance(t, FAMTRandomResizedCrop) for t in transforms):
            raise ValueError(
                'FAMTWeightHook: the training pipeline does not record the crop box; replace '
                'RandomResizedCrop by FAMTRandomResizedCrop (same arguments)')
        packs = [t for t in transforms if type(t).__name__ == 'PackInputs']
        if packs and 'famt_crop' not in packs[-1].meta_keys:
            raise ValueError(
                "FAMTWeightHook: PackInputs must keep 'famt_crop' (and 'sample_idx', 'flip', "
                "'flip_direction'): use PackInputs(meta_keys=famt_mm.datasets.FAMT_META_KEYS)")

    def _build_refresh_loader(self, runner, model):
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        ds_cfg = cfg['dataset']
        img_hw = self._img_hw(model)
        pipeline = self.refresh_pipeline
        if pipeline is None:
            pipeline = []
            for t in ds_cfg.get('pipeline', []):
                if 'Crop' in _type_name(t) or any(a in _type_name(t) for a in _AUGMENTING):
                    break
                if _type_name(t) == 'PackInputs':
                    break
                pipeline.append(t)
            pipeline += [dict(type='Resize', scale=(img_hw[1], img_hw[0]), backend='pillow',
                              interpolation='bicubic'),
                         dict(type='PackInputs', meta_keys=('sample_idx', 'img_path'))]
        ds_cfg['pipeline'] = pipeline
        dataset = _GuardedDataset(DATASETS.build(ds_cfg), self.on_bad_image, img_hw)
        rank, world = get_dist_info()
        indices = list(range(rank, len(dataset), world))  # shard, no padding
        num_workers = cfg.get('num_workers', 0) if self.num_workers is None else self.num_workers
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size or cfg.get('batch_size', 32),
            sampler=indices, num_workers=num_workers, collate_fn=default_collate,
            pin_memory=torch.cuda.is_available())

    def _check_bank(self, runner, bank_info: dict) -> Optional[str]:
        """A message if ``bank_info`` does not fit the training set / model, else None."""
        dataset = runner.train_dataloader.dataset
        model = self._model(runner)
        if bank_info.get('num_samples') != len(dataset):
            return (f"the FAMT weight bank was computed on {bank_info.get('num_samples')} "
                    f'images but the training set has {len(dataset)}')
        if tuple(bank_info.get('grid_hw', ())) != tuple(model.grid_hw):
            return (f"the FAMT weight bank has {tuple(bank_info.get('grid_hw', ()))} patch "
                    f'grids but the model uses {tuple(model.grid_hw)}')
        if bank_info.get('fingerprint') != self._dataset_fingerprint(runner):
            return ('the FAMT weight bank was computed on a different training set (same '
                    'size, other images or order)')
        return None

    def _dataset_fingerprint(self, runner):
        if self._fingerprint is None:
            self._fingerprint = dataset_fingerprint(runner.train_dataloader.dataset)
        return self._fingerprint

    # -- hook points ------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = self._model(runner)
        max_epochs = runner.max_epochs
        if self.start_epoch >= max_epochs:
            raise ValueError(f'FAMTWeightHook: start_epoch={self.start_epoch} >= max_epochs='
                             f'{max_epochs}: FAMT masking would never start')
        model.mask_generator.check_grid(model.grid_hw[0] * model.grid_hw[1])
        self._check_train_pipeline(runner)
        n_refresh = len([e for e in range(max_epochs) if self.is_refresh_epoch(e, max_epochs)])
        runner.logger.info(f'FAMT: random masking until epoch {self.start_epoch}, then FAMT '
                           f'masking; {n_refresh} weight refresh(es), every {self.interval} '
                           f'epochs; {model.mask_generator.extra_repr()}')
        model.mask_generator.set_bank(self.bank)

    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        epoch = runner.epoch
        famt = epoch >= self.start_epoch
        if famt and (self.bank is None or (self.is_refresh_epoch(epoch, runner.max_epochs)
                                           and self.bank_epoch != epoch)):
            if self.bank is None and not self.is_refresh_epoch(epoch, runner.max_epochs):
                runner.logger.warning(f'FAMT: no weight bank at FAMT epoch {epoch} '
                                      '(not restored); computing one now')
            self.refresh(runner)
        model.mask_generator.famt_active = famt

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['famt'] = dict(
            version=BANK_FORMAT_VERSION, bank=self.bank, bank_epoch=self.bank_epoch,
            num_samples=len(runner.train_dataloader.dataset),
            grid_hw=tuple(self._model(runner).grid_hw),
            fingerprint=self._dataset_fingerprint(runner),
            start_epoch=self.start_epoch, interval=self.interval)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        info = checkpoint.get('famt')
        if not info or info.get('bank') is None:
            return
        problem = self._check_bank(runner, info)
        if problem is not None:
            if self.on_mismatch == 'error':
                raise ValueError(
                    f'{problem}. Resume with the dataset the run was started with, or set '
                    "FAMTWeightHook(on_mismatch='recompute') to compute a new bank")
            runner.logger.warning(f'{problem}; the bank will be recomputed')
            return
        self.bank = info['bank'].cpu()
        self.bank_epoch = info['bank_epoch']
        self._model(runner).mask_generator.set_bank(self.bank)
        runner.logger.info(f'FAMT: restored the weight bank of epoch {self.bank_epoch} '
                           f'({tuple(self.bank.shape)}, {self.bank.dtype})')

    # -- the refresh pass --------------------------------------------------------
    @torch.no_grad()
    def refresh(self, runner) -> None:
        """Recompute every image's weight map with the current encoder."""
        model = self._model(runner)
        gen = model.mask_generator
        if self._refresh_loader is None:
            self._refresh_loader = self._build_refresh_loader(runner, model)
        loader = self._refresh_loader
        rank, world = get_dist_info()
        num_samples = len(loader.dataset)
        local = len(loader.sampler)
        t0 = time.time()
        idx_parts, bank_parts, fallback, bad = [], [], 0, []
        amp = torch.cuda.is_available() and runner.cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'
        for i, data in enumerate(loader):
            data = model.data_preprocessor(data, False)
            inputs, samples = data['inputs'], data['data_samples']
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp):
                weights, fb = model.compute_famt_weights(inputs)
            bad_mask = torch.tensor([bool(s.get('famt_bad', False)) for s in samples],
                                    device=weights.device)
            if bad_mask.any():
                weights[bad_mask] = 1.0
                bad += [(s.sample_idx, s.famt_error) for s in samples if s.get('famt_bad', False)]
            fallback += int((fb & ~bad_mask).sum())
            idx_parts.append(torch.tensor([s.sample_idx for s in samples], dtype=torch.long))
            bank_parts.append(quantize_weights(weights, gen.bank_dtype).cpu())
            done = min((i + 1) * loader.batch_size, local)
            if rank == 0 and ((i + 1) % self.log_interval == 0 or done == local):
                rate = done / max(time.time() - t0, 1e-9)
                runner.logger.info(f'FAMT refresh (epoch {runner.epoch}): {done}/{local} images '
                                   f'on this rank, {rate:.1f} img/s, ETA '
                                   f'{(local - done) / max(rate, 1e-9):.0f}s')
        grid = tuple(model.grid_hw)
        dtype = torch.float16 if gen.bank_dtype == 'float16' else torch.uint8
        idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long)
        maps = torch.cat(bank_parts) if bank_parts else torch.zeros(0, *grid, dtype=dtype)
        # Equal-size pieces for all_gather: pad with index -1.
        per_rank = math.ceil(num_samples / world)
        pad = per_rank - idx.numel()
        idx = torch.cat([idx, idx.new_full((pad,), -1)])
        maps = torch.cat([maps, maps.new_zeros(pad, *grid)])
        counts = torch.tensor([fallback, len(bad)])
        if world > 1:
            device = next(model.parameters()).device
            idx = torch.cat([t.cpu() for t in all_gather(idx.to(device))])
            maps = torch.cat([t.cpu() for t in all_gather(maps.to(device))])
            counts = sum(t.cpu() for t in all_gather(counts.to(device)))
        keep = idx >= 0
        bank = torch.zeros(num_samples, *grid, dtype=dtype)
        filled = torch.zeros(num_samples, dtype=torch.bool)
        bank[idx[keep]] = maps[keep]
        filled[idx[keep]] = True
        if not bool(filled.all()):
            missing = (~filled).nonzero().flatten()[:10].tolist()
            raise RuntimeError(f'FAMT refresh left {int((~filled).sum())} images without '
                               f'weights (e.g. {missing})')
        self.bank, self.bank_epoch = bank, runner.epoch
        self.refresh_epochs_done.append(runner.epoch)
        gen.set_bank(bank)
        seconds = time.time() - t0
        self._log_refresh(runner, bank, seconds, int(counts[0]), int(counts[1]), bad)

    def _log_refresh(self, runner, bank, seconds, n_fallback, n_bad, bad):
        from ...models.famt_weights import dequantize_weights
        w = dequantize_weights(bank).flatten(1)
        p = w / w.sum(1, keepdim=True)
        entropy = float((-(p * p.clamp_min(1e-12).log()).sum(1) / math.log(p.shape[1])).mean())
        k = max(1, int(round(0.2 * p.shape[1])))
        top20 = float(p.topk(k, dim=1).values.sum(1).mean())
        runner.logger.info(
            f'FAMT refresh before epoch {runner.epoch}: {bank.shape[0]} images in '
            f'{seconds:.1f}s ({bank.shape[0] / max(seconds, 1e-9):.1f} img/s), fallback to '
            f'uniform: {n_fallback}, unreadable: {n_bad}, normalised entropy {entropy:.4f}, '
            f'mass in top 20% patches {top20:.3f}, bank {bank.numel() * bank.element_size() / 2**20:.2f} MiB')
        for sample_idx, err in bad[:20]:
            runner.logger.warning(f'FAMT refresh: sample {sample_idx} unreadable ({err}); '
                                  'uniform weights used')
        scalars = {'famt/refresh_seconds': seconds, 'famt/fallback': n_fallback,
                   'famt/unreadable': n_bad, 'famt/entropy': entropy, 'famt/top20_mass': top20}
        for key, value in scalars.items():
            runner.message_hub.update_info(key, value)
        if runner.rank == 0:
            runner.visualizer.add_scalars(scalars, step=runner.iter)
