"""``FAMTWeightHook``: the random -> FAMT switch and the periodic weight refresh.

The hook owns the schedule and the hook points only: the bank is ``famt_mm.bank``, the refresh
pass ``famt_mm.engine.refresh``, the pipeline checks ``famt_mm.datasets.pipeline_checks``, and
the model is used through the contract of famt_mm/models/famt_algorithm.py.
"""
import glob
import os
import os.path as osp
import time
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop, find_latest_checkpoint
from mmpretrain.registry import HOOKS

from ...bank import (WeightBank, bank_file_name, check_ranks_agree, dataset_fingerprint,
                     gather_by_index, remove_stray_temporaries, write_bank_file)
from ...datasets.pipeline_checks import check_refresh_pipeline, check_train_pipeline
from ...models.famt_algorithm import check_famt_model
from ..rank_agreement import flagged_ranks, on_every_rank, rank_problems
from ..refresh import (Progress, build_refresh_loader, compute_shard_maps, map_statistics,
                       training_amp_dtype)


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
    (size, order, images, grid, corrupt values; a missing, short or corrupt bank file) is
    refused or recomputed (``on_mismatch``). Every decision that leads into a collective (refresh
    or not, restore or recompute, stop) is taken by all ranks together
    (``famt_mm.engine.rank_agreement``): a fault on one rank stops or heals the whole job.
    One FAMTWeightHook per run (a second one is refused at start).

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
            covers the refresh pass only: in training, ``FAMTLoadImageFromFile``
            stops naming the file, unless ``ignore_empty=True``, with which it warns
            naming the file and mmengine's dataset substitutes another image.
        on_mismatch (str): when a restored bank does not match the dataset:
            'error' (stop with a message) or 'recompute' (refresh before the
            next FAMT epoch).
        log_interval (int): refresh batches between progress lines.
        bank_storage (str): 'file' (each refresh writes ``<work_dir>/famt_bank/
            bank_epoch_XXXX.<dtype>.npy`` once, every process maps it read-only, checkpoints
            reference it by name and SHA-1), 'inline' (a tensor per process, stored in every
            checkpoint) or 'auto' (file from :attr:`FILE_BANK_BYTES` on). docs/design.md
            "The weight bank at scale". The work_dir must be visible to every rank (as
            mmengine's resume needs).
        keep_banks (int): bank files kept in ``famt_bank`` (the newest; -1: all), plus the one
            the newest checkpoint references, which is never removed.
    """

    #: 'auto' stores banks of this size or more as files (ImageNet-1K: 479 MiB).
    FILE_BANK_BYTES = 64 * 2**20

    priority = 'NORMAL'

    def __init__(self, start_epoch: int = 40, interval: int = 40,
                 refresh_pipeline: Optional[List[dict]] = None,
                 batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                 on_bad_image: str = 'fail', on_mismatch: str = 'error',
                 log_interval: int = 50, bank_storage: str = 'auto', keep_banks: int = 2):
        _check_int('start_epoch', start_epoch, 0)
        _check_int('interval', interval, 1)
        if on_bad_image not in ('fail', 'skip'):
            raise ValueError(f"FAMTWeightHook: on_bad_image={on_bad_image!r}, use 'fail' or 'skip'")
        if on_mismatch not in ('error', 'recompute'):
            raise ValueError(
                f"FAMTWeightHook: on_mismatch={on_mismatch!r}, use 'error' or 'recompute'")
        _check_int('log_interval', log_interval, 1)
        if batch_size is not None:
            _check_int('batch_size', batch_size, 1)
        if num_workers is not None:
            _check_int('num_workers', num_workers, 0)
        if bank_storage not in ('auto', 'file', 'inline'):
            raise ValueError(f"FAMTWeightHook: bank_storage={bank_storage!r}, use 'auto', "
                             "'file' or 'inline'")
        if not _is_int(keep_banks) or keep_banks == 0 or keep_banks < -1:
            raise ValueError(f'FAMTWeightHook: keep_banks={keep_banks!r} must be an int >= 1 '
                             'or -1 (all)')
        if refresh_pipeline is not None:
            check_refresh_pipeline(refresh_pipeline)
        self.bank_storage = bank_storage
        self.keep_banks = keep_banks
        self.start_epoch = start_epoch
        self.interval = interval
        self.refresh_pipeline = refresh_pipeline
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.on_bad_image = on_bad_image
        self.on_mismatch = on_mismatch
        self.log_interval = log_interval
        self.weight_bank: Optional[WeightBank] = None  # made on first use (restore or refresh)
        self.refresh_epochs_done: List[int] = []  # this process's refreshes, for tests/logs
        self._refresh_loader = None
        self._fingerprint = None
        self._phase_logged = False
        self._checkpoint_bank: Optional[str] = None  # bank file the newest checkpoint references

    @property
    def bank(self) -> Optional[torch.Tensor]:
        """The bank's maps, N x h x w (None before the first refresh or restore)."""
        return self.weight_bank.maps if self.weight_bank is not None else None

    @property
    def bank_epoch(self) -> Optional[int]:
        """The epoch the bank was computed for (None without a bank)."""
        return self.weight_bank.epoch if self.weight_bank is not None else None

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return check_famt_model(model, 'FAMTWeightHook')

    def is_refresh_epoch(self, epoch: int, max_epochs: int) -> bool:
        """Whether the bank is refreshed before ``epoch`` (0-based)."""
        return (self.start_epoch <= epoch < max_epochs
                and (epoch - self.start_epoch) % self.interval == 0)

    def _weight_bank(self, runner) -> WeightBank:
        """This run's bank, shared with the mask generator (which reads its rows)."""
        if self.weight_bank is None:
            model = self._model(runner)
            self.weight_bank = WeightBank(len(runner.train_dataloader.dataset), model.grid_hw,
                                          model.mask_generator.bank_dtype)
        return self.weight_bank

    def _dataset_fingerprint(self, runner):
        if self._fingerprint is None:
            self._fingerprint = dataset_fingerprint(runner.train_dataloader.dataset)
        return self._fingerprint

    # -- hook points ------------------------------------------------------------
    def before_train(self, runner) -> None:
        check_one_weight_hook(runner)
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
                f' FAMT epochs ({self.start_epoch + 1}..{max_epochs}): the weights are computed '
                f'once, before epoch {self.start_epoch + 1}, and never refreshed')
        h, w = model.grid_hw
        try:
            model.mask_generator.check_grid(h * w)
        except ValueError as e:
            raise ValueError(f"FAMTWeightHook: the model's {h}x{w} patch grid ({h * w} "
                             f'patches) does not fit the mask generator: {e}') from e
        warning = check_train_pipeline(runner.train_dataloader.dataset, model.input_hw,
                                       model.grid_hw, self.on_bad_image,
                                       getattr(model, 'data_preprocessor', None))
        if warning:
            runner.logger.warning(warning)
        n_refresh = len([e for e in range(max_epochs) if self.is_refresh_epoch(e, max_epochs)])
        runner.logger.info(f'FAMT: random masking until epoch {self.start_epoch + 1}, then FAMT '
                           f'masking; {n_refresh} weight refresh(es), every {self.interval} '
                           f'epochs; {model.mask_generator.extra_repr()}')
        model.mask_generator.set_bank(self.weight_bank)
        model.mask_generator.hook_attached = True  # the model refuses to train otherwise

    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        epoch = runner.epoch
        famt = epoch >= self.start_epoch
        refresh_epoch = self.is_refresh_epoch(epoch, runner.max_epochs)
        # Decided by all ranks at once: a rank that enters the refresh alone would wait in
        # its collectives while the others train.
        needs = flagged_ranks(famt and (self.bank is None or (refresh_epoch
                                                               and self.bank_epoch != epoch)))
        if needs:
            if not refresh_epoch:
                without = flagged_ranks(famt and self.bank is None)
                runner.logger.warning(f'FAMT: no weight bank at FAMT epoch {epoch + 1} on rank(s) '
                                      f'{without} (not restored); computing one now on every '
                                      'rank')
            self.refresh(runner)
        if famt != model.mask_generator.famt_active or not self._phase_logged:
            # once per process and at the switch: shows the phase a resumed run is in
            runner.logger.info(
                f'FAMT: epoch {epoch + 1} trains with ' + (
                    f'FAMT masking and throwing (bank of epoch {self.bank_epoch + 1})' if famt
                    else 'random masking'))
            self._phase_logged = True
        model.mask_generator.famt_active = famt

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._weight_bank(runner).state_dict(self._dataset_fingerprint(runner))
        self._checkpoint_bank = state.get('bank_file')  # never removed by keep_banks
        checkpoint['famt'] = dict(state, start_epoch=self.start_epoch, interval=self.interval)

    @staticmethod
    def _bank_dir(runner) -> str:
        return osp.join(runner.work_dir, 'famt_bank')

    @staticmethod
    def _loaded_bank_dirs(runner) -> List[str]:
        """Where a referenced bank file is looked for: beside the loaded checkpoint, then in
        this run's work_dir (then at the path it was written to)."""
        ckpt = runner.cfg.get('load_from') or (
            find_latest_checkpoint(runner.work_dir) if runner.cfg.get('resume') else None)
        dirs = [osp.join(osp.dirname(str(ckpt)), 'famt_bank')] if ckpt else []
        return dirs + [FAMTWeightHook._bank_dir(runner)]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        info = checkpoint.get('famt')
        if not WeightBank.has_maps(info):
            return
        self._checkpoint_bank = info.get('bank_file')
        bank = self._weight_bank(runner)
        dirs = self._loaded_bank_dirs(runner)
        # Each rank checks (and maps) the bank it can see; then all ranks decide together.
        problem = self._restore(runner, bank, info, dirs)
        problems = rank_problems(problem)
        if not problems:
            runner.logger.info(f'FAMT: restored the weight bank of epoch {self.bank_epoch + 1} '
                               f'({tuple(self.bank.shape)}, {self.bank.dtype})')
            return
        self.weight_bank = None  # on every rank: restored nowhere, recomputed everywhere
        self._model(runner).mask_generator.set_bank(None)
        _, world = get_dist_info()
        text = '; '.join((f'rank {r}: ' if world > 1 else '') + p
                         for r, p in sorted(problems.items()))
        if self.on_mismatch == 'error':
            missing = any('is missing' in p for p in problems.values())
            fix = ('Put the file back beside the checkpoint (famt_bank/)' if missing else
                   'Resume with the dataset the run was started with and an intact bank file')
            raise ValueError(f'{text}. {fix}, or set '
                             "FAMTWeightHook(on_mismatch='recompute') to compute a new bank")
        runner.logger.warning(f'{text}; the bank will be recomputed on every rank')

    def _restore(self, runner, bank: WeightBank, info: dict, dirs: List[str]) -> Optional[str]:
        """Check and restore the checkpoint's bank on this rank; why not, or None."""
        try:
            problem = bank.check_state(info, self._dataset_fingerprint(runner))
            if problem is None and info.get('bank') is None:
                problem = bank.check_file(info, dirs)  # one sequential read: warms the cache
            if problem is not None:
                return problem
            bank.load_state_dict(info, dirs)
        except Exception as e:  # noqa: BLE001  (any reader error: decided on by all ranks)
            return f'the FAMT weight bank cannot be restored: {type(e).__name__}: {e}'
        saved = (info.get('start_epoch'), info.get('interval'))
        if saved != (self.start_epoch, self.interval):
            runner.logger.warning(
                f'FAMT: the checkpoint was written with start_epoch, interval = {saved}, this '
                f'run uses {(self.start_epoch, self.interval)}: the refresh schedule changes')
        self._model(runner).mask_generator.set_bank(bank)
        return None

    # -- the refresh pass --------------------------------------------------------
    @torch.no_grad()
    def refresh(self, runner) -> None:
        """Recompute every image's weight map with the current encoder."""
        model = self._model(runner)
        gen = model.mask_generator
        if self._refresh_loader is None:
            self._refresh_loader = build_refresh_loader(
                runner.cfg.train_dataloader, tuple(model.input_hw), self.on_bad_image,
                self.refresh_pipeline, self.batch_size, self.num_workers)
        loader = self._refresh_loader
        rank, world = get_dist_info()
        if rank == 0:  # what a write killed before its rename left behind
            for stray in remove_stray_temporaries(self._bank_dir(runner)):
                runner.logger.warning(f'FAMT: removed {stray}, left by an interrupted bank '
                                      'write')
        t0 = time.time()
        amp = training_amp_dtype(runner.optim_wrapper)  # the training's autocast dtype
        # A failure on one rank (an unreadable image, a bug) stops every rank here, before
        # the gather, instead of leaving the others waiting in it.
        shard = on_every_rank(lambda: compute_shard_maps(
            model, loader, gen.bank_dtype, amp,
            Progress(runner.logger, runner.epoch + 1, self.log_interval, loader.batch_size)),
            f'FAMT refresh before epoch {runner.epoch + 1}')
        maps = self._gather_bank(model, shard.idx, shard.maps, len(loader.dataset))
        del shard.maps
        fallback, bad = shard.fallback, shard.bad
        bank = self._weight_bank(runner)
        if self._use_file(maps):
            self._set_bank_file(runner, bank, maps)
        else:
            bank.set_all(maps, runner.epoch)
        del maps
        if world > 1:
            sums = check_ranks_agree(bank.checksum())
            runner.logger.info(f'FAMT refresh: the {world} ranks hold the same bank (SHA-1 '
                               f'per rank: {[c[:12] for c in sums]})')
            fallback = sum(all_gather_object(fallback), [])
            bad = sum(all_gather_object(bad), [])
        self.refresh_epochs_done.append(runner.epoch)
        gen.set_bank(bank)
        seconds = time.time() - t0
        self._log_refresh(runner, bank, seconds, sorted(fallback), sorted(bad))

    def _use_file(self, maps: torch.Tensor) -> bool:
        nbytes = maps.numel() * maps.element_size()
        return self.bank_storage == 'file' or (self.bank_storage == 'auto'
                                               and nbytes >= self.FILE_BANK_BYTES)

    def _set_bank_file(self, runner, bank: WeightBank, maps: torch.Tensor) -> None:
        """Rank 0 writes the bank file once (hashing while writing); every rank then maps it.

        The other ranks hash their gathered copy for the cross-rank agreement check."""
        rank, world = get_dist_info()
        name = bank_file_name(runner.epoch, 'float16' if maps.dtype == torch.float16
                              else 'uint8')
        path = osp.join(self._bank_dir(runner), name)

        def write_or_hash():
            if rank == 0:
                return write_bank_file(path, maps)
            return WeightBank.from_maps(maps).checksum()

        sha1 = on_every_rank(write_or_hash, f'FAMT: writing the bank file {path}')
        # every rank reads the file once (its page cache) and checks it holds its own bank
        on_every_rank(lambda: bank.set_file(path, sha1, runner.epoch, verify=True),
                      f'FAMT: reading the bank file {path}')
        if rank == 0:
            self._drop_old_bank_files(runner, keep=path)

    def _drop_old_bank_files(self, runner, keep: str) -> None:
        if self.keep_banks < 0:
            return
        files = sorted(glob.glob(osp.join(self._bank_dir(runner), 'bank_epoch_*.npy')))
        # the bank the newest checkpoint references stays, whatever keep_banks is: a resume
        # from that checkpoint needs it
        kept = {keep, osp.join(self._bank_dir(runner), self._checkpoint_bank or '')}
        for old in [f for f in files if f not in kept][:max(0, len(files) - self.keep_banks)]:
            os.remove(old)
            runner.logger.info(f'FAMT: removed the old bank file {old} (keep_banks='
                               f'{self.keep_banks})')

    def _gather_bank(self, model, idx: torch.Tensor, maps: torch.Tensor,
                     num_samples: int) -> torch.Tensor:
        """All ranks' maps in dataset order (N x h x w, CPU); the collective runs on the
        model's device."""
        return gather_by_index(idx, maps, num_samples, next(model.parameters()).device)

    def _log_refresh(self, runner, bank: WeightBank, seconds, fallback, bad):
        n_fallback, n_bad = len(fallback), len(bad)
        entropy, top20 = map_statistics(bank.maps)
        n = bank.num_samples
        runner.logger.info(
            f'FAMT refresh before epoch {runner.epoch + 1}: {n} images in '
            f'{seconds:.1f}s ({n / max(seconds, 1e-9):.1f} img/s), fallback to '
            f'uniform: {n_fallback}, unreadable: {n_bad}, normalised entropy {entropy:.4f}, '
            f'mass in top 20% patches {top20:.3f}, '
            f'bank {bank.nbytes / 2**20:.2f} MiB' + (f' in {bank.file}' if bank.file else ''))
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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value, minimum: int) -> None:
    if not _is_int(value):
        raise ValueError(f'FAMTWeightHook: {name}={value!r} is a {type(value).__name__}, '
                         f'must be an int >= {minimum} (without quotes)')
    if value < minimum:
        raise ValueError(f'FAMTWeightHook: {name}={value} must be an int >= {minimum}')


def check_one_weight_hook(runner) -> None:
    """Refuse a run with more than one FAMTWeightHook (same config, same answer on every rank:
    no collective needed)."""
    hooks = [h for h in runner.hooks if isinstance(h, FAMTWeightHook)]
    if len(hooks) > 1:
        raise ValueError(
            f'{len(hooks)} FAMTWeightHooks in this run ({[type(h).__name__ for h in hooks]}): '
            'each would refresh and switch the phase, and the checkpoint would not hold the '
            'bank that trained. Keep one: set custom_hooks = [dict(type=\'FAMTWeightHook\', '
            '...), ...] in full instead of adding one to an inherited list '
            '(_base_.custom_hooks + [...])')
