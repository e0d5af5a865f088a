"""``FAMTWeightHook``: the random -> FAMT switch and the periodic weight refresh."""
import copy
import hashlib
import math
import time
from typing import List, Optional

import torch
from mmengine.dataset import default_collate
from mmengine.dist import all_gather, all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import DATASETS, HOOKS
from mmpretrain.structures import DataSample

from ...datasets.transforms import (AUGMENTING, GEOMETRIC, FAMTRandomResizedCrop, transform_name,
                                    whole_image_pipeline)
from ...models.famt_weights import dequantize_weights, quantize_weights

BANK_FORMAT_VERSION = 1


def dataset_fingerprint(dataset) -> str:
    """Identity of a dataset's sample list (order included), cheap for ImageNet."""
    h = hashlib.sha1(str(len(dataset)).encode())
    if (getattr(dataset, 'serialize_data', False)
            and getattr(dataset, 'data_bytes', None) is not None):
        h.update(memoryview(dataset.data_bytes).cast('B'))
    elif getattr(dataset, 'data_list', None):
        for info in dataset.data_list:
            h.update(str(info.get('img_path', info.get('sample_idx', ''))).encode())
            h.update(str(info.get('gt_label', '')).encode())
    return h.hexdigest()


class _GuardedDataset(torch.utils.data.Dataset):
    """Wraps the refresh dataset so that an unreadable image can be skipped.

    Reads through ``prepare_data`` where the dataset has it: mmengine's
    ``BaseDataset.__getitem__`` would silently return ANOTHER random image when
    the pipeline gives None (``LoadImageFromFile(ignore_empty=True)``), and that
    image's map would land in the wrong row. With ``skip`` a failing sample
    becomes a black placeholder flagged ``famt_bad`` (its map is set uniform and
    it is counted and named in the log). A packed ``sample_idx`` that is not the
    dataset position is a configuration error and always raises.
    """

    def __init__(self, dataset, on_bad_image: str, img_hw):
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


@HOOKS.register_module()
class FAMTWeightHook(Hook):
    """Switch from random to FAMT masking and keep the weight bank fresh.

    Before epoch ``start_epoch`` (i.e. after that many completed epochs) and then
    every ``interval`` epochs, one pass over the whole training set (each rank
    its shard, gathered by dataset index) computes every image's weight map with
    the current encoder on the whole image resized to the input size. Never
    after the last epoch. In a distributed run every rank then checks that all
    ranks hold the same bank (one all_gather of its SHA-1) and stops otherwise.
    The bank (N x h x w, ``bank_dtype`` of the mask generator: 2 or 1 bytes per
    patch) is kept on the model side and saved in checkpoints, so ``--resume``
    restores bank and phase exactly; a bank that does not fit the training set
    (size, order, images, grid, corrupt values) is refused or recomputed
    (``on_mismatch``).

    Args:
        start_epoch (int): first FAMT epoch. 40.
        interval (int): epochs between refreshes. 40.
        refresh_pipeline (list, optional): pipeline of the refresh pass. Default:
            the training pipeline's loading steps, then ``Resize`` to the input
            size and ``PackInputs``. Must not augment, crop or flip, and must
            pack ``sample_idx``.
        batch_size (int, optional): refresh batch size per rank (default: the
            training batch size).
        num_workers (int, optional): refresh loader workers (default: training's).
        on_bad_image (str): 'fail' (stop with the sample and file named) or
            'skip' (uniform weights for it, counted and named in the log). This
            covers the refresh pass only: in training, mmcv's
            ``LoadImageFromFile`` raises on such a file unless it is
            ``LoadImageFromFile(ignore_empty=True, imdecode_backend='pillow')``,
            with which mmengine's dataset silently substitutes another image.
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
        if not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f'FAMTWeightHook: log_interval={log_interval} must be an int >= 1')
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f'FAMTWeightHook: batch_size={batch_size} must be an int >= 1')
        if refresh_pipeline is not None:
            bad = [transform_name(t) for t in refresh_pipeline
                   if any(a in transform_name(t) for a in AUGMENTING + GEOMETRIC)]
            if bad:
                raise ValueError(f'FAMTWeightHook: the refresh pipeline must not augment, crop '
                                 f'or flip, but has {bad}; weights are computed on the whole '
                                 'image resized to the input size')
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
        self._phase_logged = False

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

    def _check_model_input(self, model):
        """The backbone's input size must be a whole number of patches."""
        ps = tuple(model.backbone.patch_embed.projection.kernel_size)
        img_size = tuple(getattr(model.backbone, 'img_size', self._img_hw(model)))
        if img_size != self._img_hw(model):
            raise ValueError(
                f'FAMTWeightHook: the backbone input size {img_size} is not divisible by the '
                f'patch size {ps} (the patch embedding pads it to a {tuple(model.grid_hw)} '
                'grid, so weight maps would not match the image); use a multiple of the '
                'patch size')

    def _check_train_pipeline(self, runner, model):
        dataset = runner.train_dataloader.dataset
        transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', None)
        if transforms is None:
            return  # a wrapped dataset: checked per batch by the mask generator
        crops = [t for t in transforms if isinstance(t, FAMTRandomResizedCrop)]
        if not crops:
            raise ValueError(
                'FAMTWeightHook: the training pipeline does not record the crop box; replace '
                'RandomResizedCrop by FAMTRandomResizedCrop (same arguments)')
        img_hw = self._img_hw(model)
        crop_hw = tuple(crops[-1].scale)  # (h, w), as mmpretrain's RandomResizedCrop
        if crop_hw != img_hw:
            raise ValueError(
                f'FAMTWeightHook: FAMTRandomResizedCrop makes {crop_hw[0]}x{crop_hw[1]} crops '
                f'but the model takes {img_hw[0]}x{img_hw[1]} inputs (backbone img_size, '
                f'{tuple(model.grid_hw)} patches); set the crop scale to the model input size')
        packs = [t for t in transforms if type(t).__name__ == 'PackInputs']
        if packs and 'famt_crop' not in packs[-1].meta_keys:
            raise ValueError(
                "FAMTWeightHook: PackInputs must keep 'famt_crop' (and 'sample_idx', 'flip', "
                "'flip_direction'): use PackInputs(meta_keys=famt_mm.datasets.FAMT_META_KEYS)")
        loads = [t for t in transforms if type(t).__name__ == 'LoadImageFromFile']
        if self.on_bad_image == 'skip' and loads and not (
                loads[0].ignore_empty and loads[0].imdecode_backend == 'pillow'):
            # mmcv honours ignore_empty only for decoder exceptions; cv2 returns None
            # silently and then trips an assert, so only pillow + ignore_empty lets
            # mmengine's BaseDataset replace the image by another one.
            runner.logger.warning(
                "FAMTWeightHook(on_bad_image='skip') covers the refresh pass only: the "
                'training pipeline will still stop on an unreadable image. To have mmengine '
                'replace such an image by another one during training, use '
                "LoadImageFromFile(ignore_empty=True, imdecode_backend='pillow')")

    def _build_refresh_loader(self, runner, model):
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        ds_cfg = cfg['dataset']
        img_hw = self._img_hw(model)
        pipeline = self.refresh_pipeline
        if pipeline is None:
            pipeline = whole_image_pipeline(ds_cfg.get('pipeline', []), img_hw)
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
        if bank_info.get('version') != BANK_FORMAT_VERSION:
            return (f"the FAMT weight bank has format version {bank_info.get('version')}, "
                    f'this famt_mm reads version {BANK_FORMAT_VERSION}')
        if bank_info.get('num_samples') != len(dataset):
            return (f"the FAMT weight bank was computed on {bank_info.get('num_samples')} "
                    f'images but the training set has {len(dataset)}')
        if tuple(bank_info.get('grid_hw', ())) != tuple(model.grid_hw):
            return (f"the FAMT weight bank has {tuple(bank_info.get('grid_hw', ()))} patch "
                    f'grids but the model uses {tuple(model.grid_hw)}')
        bank = bank_info['bank']
        if tuple(bank.shape) != (len(dataset), *model.grid_hw) or bank.dtype not in (
                torch.float16, torch.uint8):
            return (f'the FAMT weight bank tensor is {tuple(bank.shape)} {bank.dtype}, '
                    f'expected {(len(dataset), *model.grid_hw)} float16 or uint8 (corrupt '
                    'checkpoint?)')
        if bank.is_floating_point() and not bool(torch.isfinite(bank).all()):
            return 'the FAMT weight bank holds NaN / inf values (corrupt checkpoint?)'
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
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            raise ValueError('FAMTWeightHook schedules by epoch (start_epoch, interval); use '
                             "train_cfg=dict(type='EpochBasedTrainLoop', ...)")
        max_epochs = runner.max_epochs
        if self.start_epoch >= max_epochs:
            raise ValueError(f'FAMTWeightHook: start_epoch={self.start_epoch} >= max_epochs='
                             f'{max_epochs}: FAMT masking would never start')
        if self.interval >= max_epochs - self.start_epoch and max_epochs - self.start_epoch > 1:
            runner.logger.warning(
                f'FAMTWeightHook: interval={self.interval} >= the {max_epochs - self.start_epoch}'
                f' FAMT epochs ({self.start_epoch}..{max_epochs - 1}): the weights are computed '
                f'once, before epoch {self.start_epoch}, and never refreshed')
        self._check_model_input(model)
        h, w = model.grid_hw
        try:
            model.mask_generator.check_grid(h * w)
        except ValueError as e:
            raise ValueError(f"FAMTWeightHook: the model's {h}x{w} patch grid ({h * w} "
                             f'patches) does not fit the mask generator: {e}') from e
        self._check_train_pipeline(runner, model)
        n_refresh = len([e for e in range(max_epochs) if self.is_refresh_epoch(e, max_epochs)])
        runner.logger.info(f'FAMT: random masking until epoch {self.start_epoch}, then FAMT '
                           f'masking; {n_refresh} weight refresh(es), every {self.interval} '
                           f'epochs; {model.mask_generator.extra_repr()}')
        model.mask_generator.set_bank(self.bank)
        model.mask_generator.hook_attached = True  # the model refuses to train otherwise

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
        if famt != model.mask_generator.famt_active or not self._phase_logged:
            # once per process and at the switch: shows the phase a resumed run is in
            runner.logger.info(
                f'FAMT: epoch {epoch} trains with ' + (
                    f'FAMT masking and throwing (bank of epoch {self.bank_epoch})' if famt
                    else 'random masking'))
            self._phase_logged = True
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
        saved = (info.get('start_epoch'), info.get('interval'))
        if saved != (self.start_epoch, self.interval):
            runner.logger.warning(
                f'FAMT: the checkpoint was written with start_epoch, interval = {saved}, this '
                f'run uses {(self.start_epoch, self.interval)}: the refresh schedule changes')
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
        local = len(loader.sampler)
        img_hw = self._img_hw(model)
        t0 = time.time()
        idx_parts, bank_parts, fallback, bad = [], [], [], []
        amp = (torch.cuda.is_available()
               and runner.cfg.optim_wrapper.get('type') == 'AmpOptimWrapper')
        for i, data in enumerate(loader):
            data = model.data_preprocessor(data, False)
            inputs, samples = data['inputs'], data['data_samples']
            if tuple(inputs.shape[-2:]) != img_hw:
                raise ValueError(
                    f'FAMT refresh: the refresh pipeline gives {tuple(inputs.shape[-2:])} '
                    f'images but the model takes {img_hw}; end it with a Resize to the input '
                    'size (no crop)')
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp):
                weights, fb = model.compute_famt_weights(inputs)
            bad_mask = torch.tensor([bool(s.get('famt_bad', False)) for s in samples],
                                    device=weights.device)
            if bad_mask.any():
                weights[bad_mask] = 1.0
                bad += [(s.sample_idx, s.famt_error) for s in samples if s.get('famt_bad', False)]
            fallback += [s.sample_idx for s, f in zip(samples, (fb & ~bad_mask).tolist()) if f]
            idx_parts.append(torch.tensor([s.sample_idx for s in samples], dtype=torch.long))
            bank_parts.append(quantize_weights(weights, gen.bank_dtype).cpu())
            done = min((i + 1) * loader.batch_size, local)
            if rank == 0 and ((i + 1) % self.log_interval == 0 or done == local):
                rate = done / max(time.time() - t0, 1e-9)
                runner.logger.info(f'FAMT refresh (epoch {runner.epoch}): {done}/{local} images '
                                   f'on this rank, {rate:.1f} img/s, ETA '
                                   f'{(local - done) / max(rate, 1e-9):.0f}s')
        bank = self._gather_bank(model, idx_parts, bank_parts, len(loader.dataset))
        if world > 1:
            self._check_ranks_agree(runner, bank, world)
            fallback = sum(all_gather_object(fallback), [])
            bad = sum(all_gather_object(bad), [])
        self.bank, self.bank_epoch = bank, runner.epoch
        self.refresh_epochs_done.append(runner.epoch)
        gen.set_bank(bank)
        seconds = time.time() - t0
        self._log_refresh(runner, bank, seconds, sorted(fallback), sorted(bad))

    def _gather_bank(self, model, idx_parts, bank_parts, num_samples) -> torch.Tensor:
        """Every rank's maps, put in dataset order: the N x h x w bank (CPU)."""
        _, world = get_dist_info()
        grid = tuple(model.grid_hw)
        dtype = torch.float16 if model.mask_generator.bank_dtype == 'float16' else torch.uint8
        idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long)
        maps = torch.cat(bank_parts) if bank_parts else torch.zeros(0, *grid, dtype=dtype)
        # Equal-size pieces for all_gather: pad with index -1.
        per_rank = math.ceil(num_samples / world)
        pad = per_rank - idx.numel()
        idx = torch.cat([idx, idx.new_full((pad,), -1)])
        maps = torch.cat([maps, maps.new_zeros(pad, *grid)])
        if world > 1:
            device = next(model.parameters()).device
            idx = torch.cat([t.cpu() for t in all_gather(idx.to(device))])
            maps = torch.cat([t.cpu() for t in all_gather(maps.to(device))])
        keep = idx >= 0
        bank = torch.zeros(num_samples, *grid, dtype=dtype)
        filled = torch.zeros(num_samples, dtype=torch.bool)
        bank[idx[keep]] = maps[keep]
        filled[idx[keep]] = True
        if not bool(filled.all()):
            missing = (~filled).nonzero().flatten()[:10].tolist()
            raise RuntimeError(f'FAMT refresh left {int((~filled).sum())} images without '
                               f'weights (e.g. {missing})')
        return bank

    @staticmethod
    def bank_checksum(bank: torch.Tensor) -> str:
        """SHA-1 of the bank's bytes (hex): equal banks, equal checksums."""
        return hashlib.sha1(bank.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()

    def _check_ranks_agree(self, runner, bank: torch.Tensor, world: int) -> None:
        """Raise on every rank unless all ranks now hold the same bank.

        Each rank trains with its own copy, so a divergent copy would train silently
        wrong on that rank's shard of every epoch; one all_gather of a short string.
        """
        sums = all_gather_object(self.bank_checksum(bank))
        if len(set(sums)) != 1:
            raise RuntimeError(
                f'FAMT refresh: the {world} ranks hold different weight banks (SHA-1 per '
                f'rank: {[c[:12] for c in sums]}); the gather of the refresh pass is broken, '
                'stopping rather than training on inconsistent weights')
        runner.logger.info(f'FAMT refresh: the {world} ranks hold the same bank (SHA-1 '
                           f'{sums[0][:12]})')

    def _log_refresh(self, runner, bank, seconds, fallback, bad):
        n_fallback, n_bad = len(fallback), len(bad)
        w = dequantize_weights(bank).flatten(1)
        p = w / w.sum(1, keepdim=True)
        entropy = float((-(p * p.clamp_min(1e-12).log()).sum(1) / math.log(p.shape[1])).mean())
        k = max(1, int(round(0.2 * p.shape[1])))
        top20 = float(p.topk(k, dim=1).values.sum(1).mean())
        runner.logger.info(
            f'FAMT refresh before epoch {runner.epoch}: {bank.shape[0]} images in '
            f'{seconds:.1f}s ({bank.shape[0] / max(seconds, 1e-9):.1f} img/s), fallback to '
            f'uniform: {n_fallback}, unreadable: {n_bad}, normalised entropy {entropy:.4f}, '
            f'mass in top 20% patches {top20:.3f}, '
            f'bank {bank.numel() * bank.element_size() / 2**20:.2f} MiB')
        if fallback:
            more = f' and {n_fallback - 20} more' if n_fallback > 20 else ''
            runner.logger.warning(
                f'FAMT refresh: {n_fallback} weight map(s) were NaN / inf / all zero and fell '
                f'back to uniform: samples {fallback[:20]}{more}')
        for sample_idx, err in bad[:20]:
            runner.logger.warning(f'FAMT refresh: sample {sample_idx} unreadable ({err}); '
                                  'uniform weights used')
        if n_bad > 20:
            runner.logger.warning(f'FAMT refresh: {n_bad - 20} more unreadable samples')
        scalars = {'famt/refresh_seconds': seconds, 'famt/fallback': n_fallback,
                   'famt/unreadable': n_bad, 'famt/entropy': entropy, 'famt/top20_mass': top20}
        for key, value in scalars.items():
            runner.message_hub.update_info(key, value)
        if runner.rank == 0:
            runner.visualizer.add_scalars(scalars, step=runner.iter)
