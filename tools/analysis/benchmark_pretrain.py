"""Time FAMT's pre-training step against mmpretrain's own MAE (or SimMIM), side by side.

    python tools/analysis/benchmark_pretrain.py [--algorithm mae|simmim]
        [--arch t|s|b|l] [--batch 32] [--img-size 224] [--precision fp32|bf16|fp16]
        [--device cpu|cuda] [--steps 20] [--warmup 3] [--threads N] [--warm-up-throw]
        [--out result.json]

Both models are built from the model sections of the ImageNet configs
(``--algorithm mae``: ``configs/famt_mae_vit-b_in1k.py`` and ``configs/mae_vit-b_in1k.py``;
``--algorithm simmim``: ``configs/famt_simmim_vit-b-p16_in1k.py`` and
``configs/simmim_vit-b-p16_in1k.py``; or the pair given with ``--famt-config`` /
``--baseline-config``) with the encoder arch overridden (t = deit-tiny, s = deit-small,
b, l; all /16), the same decoder, head, batch, input size, precision and AdamW setup, and
the same weights. The baseline's results are under its name (``mae`` / ``simmim``).

What is measured (median of ``--steps`` after ``--warmup``; the two models'
steps alternate so that a load change on a shared machine hits both alike):

* training step, forward + backward + optimizer step, of FAMTMAE in its FAMT
  phase (bank set, ``famt_active``; data samples with crop boxes and flips from
  the config's own ``FAMTRandomResizedCrop`` + ``RandomFlip`` + ``PackInputs``)
  and of mmpretrain's ``MAE`` (random masking 0.75) or ``SimMIM`` (a mask-token ViT, all
  L patches in the encoder; masks from the baseline config's ``SimMIMMaskGenerator``);
* with ``--warm-up-throw``: the step of the random phase with the warm-up throw
  (``random_mask_ratio`` / ``random_throw_ratio`` = the FAMT ratios: uniform sets at FAMT's
  budget), in turns with the two steps above;
* the same FAMT step with a uint8 bank (1 byte per patch);
* the refresh pass: ``compute_famt_weights`` + quantisation on whole images;
* ``mask_generator.sample`` alone (sampling + crop mapping);
* peak memory of a step: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the
  peak resident set size (VmHWM, reset through /proc/self/clear_refs) above the
  resident size before the step (after ``malloc_trim``), i.e. what one step
  adds on top of model, optimizer state and inputs;
* the weight bank's bytes per image for float16 and uint8;
* the FLOP ratio the token budget allows, counted from the token counts and
  the layers' dimensions (forward + backward = 3 x forward).

The data preprocessor and the data loader are left out (the same for both);
inputs are random normalised images already on the device.
"""
import argparse
import ctypes
import gc
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

#: --arch -> mmpretrain arch name. ViT-S/16 is 'deit-small' (384-d, 12 blocks,
#: 6 heads); mmpretrain's 's' is a different, 768-d 8-block model.
ARCHS = {'t': 'deit-tiny', 's': 'deit-small', 'b': 'b', 'l': 'l'}
ARCH_NAMES = {'t': 'ViT-T/16', 's': 'ViT-S/16', 'b': 'ViT-B/16', 'l': 'ViT-L/16'}
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: --algorithm -> the (FAMT, baseline) config pair it defaults to.
ALGORITHMS = {
    'mae': ('famt_mae_vit-b_in1k.py', 'mae_vit-b_in1k.py'),
    'simmim': ('famt_simmim_vit-b-p16_in1k.py', 'simmim_vit-b-p16_in1k.py'),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark FAMT vs MAE (or SimMIM) pre-training steps')
    parser.add_argument('--algorithm', choices=sorted(ALGORITHMS), default='mae',
                        help='the MIM framework FAMT is compared in (default configs)')
    parser.add_argument('--arch', choices=sorted(ARCHS), default='s',
                        help='encoder: t (deit-tiny), s (deit-small), b, l; patch 16')
    parser.add_argument('--batch', type=int, default=32, help='training batch size')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--precision', choices=sorted(PRECISIONS), default='fp32',
                        help='bf16 / fp16: autocast (fp16 with a GradScaler, GPU only)')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--steps', type=int, default=20, help='timed steps per model')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps per model first')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--refresh-batch', type=int, default=None,
                        help='batch of the refresh pass (default: --batch)')
    parser.add_argument('--bank-size', type=int, default=10000,
                        help='images in the synthetic weight bank')
    parser.add_argument('--famt-config', default=None,
                        help="default: the --algorithm's ImageNet FAMT config")
    parser.add_argument('--baseline-config', '--mae-config', dest='baseline_config',
                        default=None, help="default: the --algorithm's ImageNet baseline")
    parser.add_argument('--keep-arch', action='store_true',
                        help="use the configs' encoder as is (ignore --arch)")
    parser.add_argument('--warm-up-throw', action='store_true',
                        help='also time the random-phase step with random_throw_ratio (the '
                        'warm-up throw at the FAMT ratios)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    args = parser.parse_args(argv)
    famt_default, baseline_default = ALGORITHMS[args.algorithm]
    args.famt_config = args.famt_config or osp.join(REPO, 'configs', famt_default)
    args.baseline_config = args.baseline_config or osp.join(REPO, 'configs', baseline_default)
    return args


# -- models -----------------------------------------------------------------
def model_cfg(config, arch, img_size, keep_arch):
    """The config's model section, encoder arch and input size overridden."""
    from mmengine.config import Config
    from mmpretrain.models import VisionTransformer
    cfg = Config.fromfile(config).model
    cfg.backbone.img_size = img_size
    if not keep_arch:
        cfg.backbone.arch = ARCHS[arch]
    arch_name = cfg.backbone.get('arch', 'b')
    settings = arch_name if isinstance(arch_name, dict) else \
        VisionTransformer.arch_zoo[arch_name.lower()]
    patch = cfg.backbone.get('patch_size', 16)
    if 'encoder_stride' in cfg.neck:  # SimMIM's linear decoder: C -> p * p * 3 per token
        cfg.neck.in_channels = settings['embed_dims']
        cfg.neck.encoder_stride = patch
    else:
        cfg.neck.embed_dim = settings['embed_dims']
        cfg.neck.num_patches = (img_size // patch) ** 2
        cfg.neck.patch_size = patch
    cfg.head.patch_size = patch
    return cfg


def build_models(args, device):
    from mmpretrain.registry import MODELS
    import famt_mm  # noqa: F401  (registers FAMTMAE & co.)
    torch.manual_seed(args.seed)
    famt = MODELS.build(model_cfg(args.famt_config, args.arch, args.img_size, args.keep_arch))
    base = MODELS.build(model_cfg(args.baseline_config, args.arch, args.img_size,
                                  args.keep_arch))
    famt.init_weights()
    missing, unexpected = base.load_state_dict(famt.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f'FAMT and baseline configs differ in parameters: missing '
                           f'{missing}, unexpected {unexpected}')
    return famt.to(device).train(), base.to(device).train()


def build_optimizer(config, model):
    """The config's AdamW with its parameter-wise settings (plain OptimWrapper)."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(config).get('optim_wrapper', None)
    if cfg is None:
        cfg = dict(optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05))
    cfg = dict(cfg)
    cfg['type'] = 'OptimWrapper'  # autocast / loss scaling are done here, for both alike
    cfg.pop('loss_scale', None)
    cfg.pop('dtype', None)
    return build_optim_wrapper(model, cfg).optimizer


# -- data -------------------------------------------------------------------
def famt_data_samples(config, img_size, batch, num_batches, bank_size, seed, famt=True):
    """``num_batches`` lists of data samples, packed by the config's own pipeline.

    Dummy images of ImageNet-like sizes go through FAMTRandomResizedCrop (scale
    ``img_size``), RandomFlip and PackInputs, so crop boxes and flips are exactly
    what training produces. ``famt=False``: a baseline pipeline (e.g. SimMIM's, whose
    ``SimMIMMaskGenerator`` packs the masks; its ``input_size`` set to ``img_size``).
    """
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    from mmpretrain.utils import register_all_modules
    import famt_mm  # noqa: F401  (registers FAMTRandomResizedCrop)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    pipeline = []
    for t in cfg.train_dataloader.dataset.pipeline:
        t = dict(t)
        if t['type'] == 'LoadImageFromFile':
            continue
        if 'scale' in t and 'Crop' in t['type']:
            t['scale'] = img_size
        if t['type'] == 'SimMIMMaskGenerator':
            t['input_size'] = img_size
        pipeline.append(t)
    if famt and not any(t['type'] == 'FAMTRandomResizedCrop' for t in pipeline):
        raise ValueError(f'{config}: the training pipeline has no FAMTRandomResizedCrop')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(pipeline)
    rng = np.random.RandomState(seed)
    np.random.seed(seed)
    shapes = [(375, 500), (500, 375), (333, 500), (500, 500), (281, 500)]
    batches = []
    for _ in range(num_batches):
        samples = []
        for idx in rng.randint(0, bank_size, size=batch):
            h, w = shapes[rng.randint(len(shapes))]
            out = pipeline(dict(img=np.zeros((h, w, 3), np.uint8), img_path='',
                                sample_idx=int(idx), ori_shape=(h, w), img_shape=(h, w)))
            samples.append(out['data_samples'])
        batches.append(samples)
    return batches


# -- timing -----------------------------------------------------------------
def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(device, precision):
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class Stepper:
    """One training step: forward (loss), backward, optimizer step."""

    def __init__(self, model, optimizer, inputs, sample_batches, device, precision):
        self.model, self.optimizer = model, optimizer
        self.inputs, self.sample_batches = inputs, sample_batches
        self.device, self.precision = device, precision
        self.scaler = torch.amp.GradScaler('cuda') if precision == 'fp16' else None
        self.i = 0

    def __call__(self):
        samples = self.sample_batches[self.i % len(self.sample_batches)]
        self.i += 1
        with autocast(self.device, self.precision):
            loss = self.model.loss(self.inputs, samples)['loss']
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss


def timed(fn, device):
    """Wall seconds and this process's CPU seconds of one call."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def time_alternating(fns, device, steps, warmup):
    """(wall, cpu) seconds of each callable per call, run in turns (a, b, a, b, ...)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(steps):
        for t, fn in zip(times, fns):
            t.append(timed(fn, device))
    return times


def summary(times, batch):
    """Median wall time (the result) and CPU time of the process (a cross-check:
    on a shared CPU the wall time also counts time the scheduler gave to others)."""
    wall = [t[0] for t in times]
    med = statistics.median(wall)
    return dict(median_s=med, min_s=min(wall), max_s=max(wall),
                iqr_s=float(np.subtract(*np.percentile(wall, [75, 25]))),
                images_per_s=batch / med, n=len(wall),
                cpu_median_s=statistics.median(t[1] for t in times))


# -- memory -----------------------------------------------------------------
def _proc_status_kib(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def peak_step_memory(step, device, steps=2):
    """Peak memory of ``steps`` training steps (see the module docstring)."""
    gc.collect()
    if device.type == 'cuda':
        sync(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(steps):
            step()
        sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return dict(kind='torch.cuda.max_memory_allocated', peak_bytes=peak,
                    before_bytes=before, step_bytes=peak - before)
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)  # hand freed heap pages back first
    except OSError:
        pass
    try:
        before = _proc_status_kib('VmRSS') * 1024
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS (Linux >= 4.0)
        for _ in range(steps):
            step()
        peak = _proc_status_kib('VmHWM') * 1024
    except OSError:
        return dict(kind='unavailable (no /proc/self/clear_refs)', peak_bytes=None,
                    before_bytes=None, step_bytes=None)
    return dict(kind='peak RSS (VmHWM) above the RSS before the step, after malloc_trim',
                peak_bytes=peak, before_bytes=before, step_bytes=peak - before)


# -- FLOPs ------------------------------------------------------------------
def _block_macs(block, n_tokens):
    """Multiply-adds of one transformer block on ``n_tokens`` tokens."""
    linear = sum(m.in_features * m.out_features for m in block.modules()
                 if isinstance(m, torch.nn.Linear))
    dim = block.attn.embed_dims
    return n_tokens * linear + 2 * n_tokens * n_tokens * dim  # QK^T and AV


def step_flops(model, n_embed, n_enc, n_dec, n_pred):
    """FLOPs of one image's training step (forward + backward), counted analytically.

    Patch embedding of ``n_embed`` patches (FAMTViT embeds only the visible ones,
    MAEViT all L), encoder blocks on ``n_enc`` tokens, decoder embedding on
    ``n_enc``, decoder blocks on ``n_dec``, pixel prediction on ``n_pred``. The
    patch embedding has no input gradient: 2 x forward; the rest 3 x forward.
    Norms, softmax, GELU, losses, gathers and the optimizer are left out.
    """
    bb, neck = model.backbone, model.neck
    proj = bb.patch_embed.projection
    patch_macs = n_embed * proj.in_channels * proj.kernel_size[0] * proj.kernel_size[1] \
        * proj.out_channels
    enc = sum(_block_macs(layer, n_enc) for layer in bb.layers)
    dec = n_enc * neck.decoder_embed.in_features * neck.decoder_embed.out_features
    dec += sum(_block_macs(blk, n_dec) for blk in neck.decoder_blocks)
    dec += n_pred * neck.decoder_pred.in_features * neck.decoder_pred.out_features
    return dict(patch_embed=2 * 2 * patch_macs, encoder=3 * 2 * enc, decoder=3 * 2 * dec,
                total=2 * 2 * patch_macs + 3 * 2 * (enc + dec))


def token_budget(famt, mae):
    """Token counts of both models and the FLOPs they imply.

    ``ratio``: MAE / FAMT FLOPs as the two implementations run (FAMT embeds its V
    visible patches, mmpretrain's MAE all L); ``ratio_same_patch_embed``: with
    both embedding all L patches, i.e. the transformer token budget alone.
    """
    from famt_mm.models.famt_sampling import split_counts
    num_patches = famt.grid_hw[0] * famt.grid_hw[1]
    n_mask, n_throw, n_vis = split_counts(num_patches, famt.mask_generator.mask_ratio,
                                          famt.mask_generator.throw_ratio)
    mae_keep = int(num_patches * (1 - mae.backbone.mask_ratio))  # MAEViT.random_masking
    tokens = dict(
        num_patches=num_patches, famt_masked=n_mask, famt_thrown=n_throw, famt_visible=n_vis,
        famt_encoder=1 + n_vis, famt_decoder=1 + n_vis + n_mask,
        mae_encoder=1 + mae_keep, mae_decoder=1 + num_patches)
    f = step_flops(famt, n_vis, tokens['famt_encoder'], tokens['famt_decoder'], n_mask)
    f_all = step_flops(famt, num_patches, tokens['famt_encoder'], tokens['famt_decoder'], n_mask)
    m = step_flops(mae, num_patches, tokens['mae_encoder'], tokens['mae_decoder'],
                   1 + num_patches)
    return tokens, dict(famt=f, mae=m, ratio=m['total'] / f['total'],
                        ratio_same_patch_embed=m['total'] / f_all['total'],
                        refresh=refresh_flops(famt),
                        refresh_vs_mae_step=m['total'] / refresh_flops(famt))


def simmim_step_flops(model, n_embed, n_enc, n_pred):
    """FLOPs of one image's SimMIM training step (forward + backward), counted analytically.

    Patch embedding of ``n_embed`` patches (FAMTSimMIMViT embeds only the visible ones,
    the plain ViT all L; a masked token is the mask token), encoder blocks on ``n_enc``
    tokens, the linear decoder (a 1x1 conv, C -> 3 p p) on ``n_pred`` tokens (FAMT: the
    masked ones; plain SimMIM: all L). Same conventions as :func:`step_flops`.
    """
    bb, conv = model.backbone, model.neck.decoder[0]
    proj = bb.patch_embed.projection
    patch_macs = n_embed * proj.in_channels * proj.kernel_size[0] * proj.kernel_size[1] \
        * proj.out_channels
    enc = sum(_block_macs(layer, n_enc) for layer in bb.layers)
    dec = n_pred * conv.in_channels * conv.out_channels
    return dict(patch_embed=2 * 2 * patch_macs, encoder=3 * 2 * enc, decoder=3 * 2 * dec,
                total=2 * 2 * patch_macs + 3 * 2 * (enc + dec))


def simmim_token_budget(famt, simmim):
    """Token counts of FAMT SimMIM (on units of s x s patches) and plain SimMIM, and FLOPs.

    Keys as :func:`token_budget`'s, the baseline named ``simmim``; ``num_units`` is the
    mask-unit grid's size, the FAMT counts are patches (units x s * s).
    """
    from famt_mm.models.famt_sampling import split_counts
    num_units = famt.grid_hw[0] * famt.grid_hw[1]
    num_patches = famt.patch_grid_hw[0] * famt.patch_grid_hw[1]
    per_unit = famt.unit_scale ** 2
    n_mask, n_throw, n_vis = (per_unit * n for n in split_counts(
        num_units, famt.mask_generator.mask_ratio, famt.mask_generator.throw_ratio))
    tokens = dict(num_patches=num_patches, num_units=num_units, famt_masked=n_mask,
                  famt_thrown=n_throw, famt_visible=n_vis, famt_encoder=1 + n_mask + n_vis,
                  simmim_encoder=1 + num_patches)
    f = simmim_step_flops(famt, n_vis, tokens['famt_encoder'], n_mask)
    f_all = simmim_step_flops(famt, num_patches, tokens['famt_encoder'], n_mask)
    m = simmim_step_flops(simmim, num_patches, tokens['simmim_encoder'], num_patches)
    return tokens, dict(famt=f, simmim=m, ratio=m['total'] / f['total'],
                        ratio_same_patch_embed=m['total'] / f_all['total'],
                        refresh=refresh_flops(famt),
                        refresh_vs_simmim_step=m['total'] / refresh_flops(famt))


def refresh_flops(model):
    """FLOPs per image of the refresh pass: patch embedding and every encoder block on
    all 1 + L tokens, forward only (the CLS row and the FFT term are < 1 % more)."""
    bb = model.backbone
    proj = bb.patch_embed.projection
    num_patches = bb.patch_resolution[0] * bb.patch_resolution[1]
    patch_macs = num_patches * proj.in_channels * proj.kernel_size[0] * proj.kernel_size[1] \
        * proj.out_channels
    return 2 * (patch_macs + sum(_block_macs(layer, 1 + num_patches) for layer in bb.layers))


# -- the benchmark ----------------------------------------------------------
def make_bank(famt, device, bank_size, refresh_batch, img_size, precision):
    """A realistic bank: the refresh's own weights, tiled to ``bank_size`` images."""
    from famt_mm.models.famt_weights import quantize_weights
    x = torch.randn(refresh_batch, 3, img_size, img_size, device=device)
    with autocast(device, precision):
        weights, _ = famt.compute_famt_weights(x)
    weights = weights.float().cpu()
    reps = math.ceil(bank_size / weights.shape[0])
    weights = weights.repeat(reps, 1, 1)[:bank_size]
    return {dtype: quantize_weights(weights, dtype) for dtype in ('float16', 'uint8')}


def run(args):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_pretrain', log_level='WARNING')  # quiet param-wise logs
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device here')
    if device.type == 'cpu' and args.precision == 'fp16':
        raise SystemExit('--precision fp16 needs a GPU (use bf16 or fp32 on CPU)')
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    from famt_mm.bank import WeightBank
    from mmpretrain.models.selfsup import SimMIM
    famt, base = build_models(args, device)
    bn = 'simmim' if isinstance(base, SimMIM) else 'mae'  # the baseline's name in the results
    batch, refresh_batch = args.batch, args.refresh_batch or args.batch
    gen = famt.mask_generator

    t0 = time.perf_counter()
    banks = make_bank(famt, device, args.bank_size, refresh_batch, args.img_size,
                      args.precision)
    sample_batches = famt_data_samples(args.famt_config, args.img_size, batch, 4,
                                       args.bank_size, args.seed)
    # MAE draws its own masks; SimMIM reads them from its data samples
    base_batches = sample_batches if bn == 'mae' else famt_data_samples(
        args.baseline_config, args.img_size, batch, 4, args.bank_size, args.seed, famt=False)
    setup_s = time.perf_counter() - t0
    bank_bytes = {k: b[0].numel() * b.element_size() for k, b in banks.items()}
    gen.set_bank(WeightBank.from_maps(banks['float16']))
    gen.famt_active = True

    torch.manual_seed(args.seed)
    inputs = torch.randn(batch, 3, args.img_size, args.img_size, device=device)
    famt_step = Stepper(famt, build_optimizer(args.famt_config, famt), inputs,
                        sample_batches, device, args.precision)
    mae_step = Stepper(base, build_optimizer(args.baseline_config, base), inputs,
                       base_batches, device, args.precision)

    steps = [famt_step, mae_step]
    if args.warm_up_throw:  # the random phase at FAMT's ratios: the same model and optimizer
        gen.random_mask_ratio, gen.random_throw_ratio = gen.mask_ratio, gen.throw_ratio

        def warm_up_step():
            gen.famt_active = False
            try:
                return famt_step()
            finally:
                gen.famt_active = True
        steps.append(warm_up_step)

    # 1. training steps, FAMT, the baseline (and the warm-up throw) in turns
    famt_t, mae_t, *warm_t = time_alternating(steps, device, args.steps, args.warmup)
    # one more step each, its loss kept: tools/gpu_check.sh fails on a non-finite one
    last_losses = {'famt': float(famt_step()), bn: float(mae_step())}

    # 2. the same FAMT step on a uint8 bank (1 byte per patch), end to end
    gen.set_bank(WeightBank.from_maps(banks['uint8']))
    uint8_t, = time_alternating([famt_step], device, max(2, args.steps // 2), 1)
    gen.set_bank(WeightBank.from_maps(banks['float16']))

    # 3. sampling + crop mapping alone
    def sample_once(i=[0]):
        i[0] += 1
        samples = sample_batches[i[0] % len(sample_batches)]
        if bn == 'simmim':  # units drawn and expanded to patches
            return famt.famt_split(samples, batch, device)
        return gen.sample(samples, famt.grid_hw, batch, device)
    sample_t, = time_alternating([sample_once], device, max(10, 5 * args.steps), 3)

    # 4. the refresh pass: weights of whole images, quantised as the hook stores them
    from famt_mm.models.famt_weights import quantize_weights
    refresh_x = torch.randn(refresh_batch, 3, args.img_size, args.img_size, device=device)

    def refresh_once():
        with autocast(device, args.precision):
            weights, _ = famt.compute_famt_weights(refresh_x)
        return quantize_weights(weights, gen.bank_dtype)
    refresh_t, = time_alternating([refresh_once], device, max(3, args.steps // 2), 1)

    # 5. peak memory of a step (each model alone)
    famt_mem = peak_step_memory(famt_step, device)
    mae_mem = peak_step_memory(mae_step, device)
    load_after = os.getloadavg()

    tokens, flops = (simmim_token_budget if bn == 'simmim' else token_budget)(famt, base)
    cell, n_cells = (('unit', tokens['num_units']) if bn == 'simmim'
                     else ('patch', tokens['num_patches']))
    famt_s, mae_s = summary(famt_t, batch), summary(mae_t, batch)
    refresh_s = summary(refresh_t, refresh_batch)
    sample_s = summary(sample_t, batch)
    paired = [m[0] / f[0] for f, m in zip(famt_t, mae_t)]
    warm_up = {}
    if warm_t:
        warm_s = summary(warm_t[0], batch)
        warm_up = dict(warm_up_throw=dict(
            step=warm_s, ratios=(gen.random_mask_ratio, gen.random_throw_ratio),
            speedup=warm_s['images_per_s'] / mae_s['images_per_s'],
            speedup_paired_median=statistics.median(m[0] / w[0]
                                                    for w, m in zip(warm_t[0], mae_t)),
            vs_famt_step=warm_s['images_per_s'] / famt_s['images_per_s']))
    result = dict(
        setup=dict(arch=args.arch, arch_name=ARCH_NAMES[args.arch] if not args.keep_arch else
                   'config', batch=batch, refresh_batch=refresh_batch, img_size=args.img_size,
                   precision=args.precision, device=args.device,
                   device_name=torch.cuda.get_device_name(device) if device.type == 'cuda'
                   else platform.processor() or platform.machine(),
                   cpu_count=os.cpu_count(), threads=torch.get_num_threads(),
                   steps=args.steps, warmup=args.warmup, bank_size=args.bank_size,
                   baseline=bn, famt_config=osp.relpath(args.famt_config, REPO),
                   baseline_config=osp.relpath(args.baseline_config, REPO),
                   torch=torch.__version__, python=platform.python_version(),
                   setup_s=setup_s, load_avg_before=list(load_before),
                   load_avg_after=list(load_after),
                   time=time.strftime('%Y-%m-%d %H:%M:%S')),
        tokens=tokens,
        famt=dict(step=famt_s, step_uint8_bank=summary(uint8_t, batch), memory=famt_mem,
                  last_loss=last_losses['famt'],
                  flops_per_image=flops['famt']['total'],
                  params=sum(p.numel() for p in famt.parameters())),
        **{bn: dict(step=mae_s, memory=mae_mem, flops_per_image=flops[bn]['total'],
                    last_loss=last_losses[bn],
                    params=sum(p.numel() for p in base.parameters()))},
        flops=flops,
        ratios=dict(
            speedup=famt_s['images_per_s'] / mae_s['images_per_s'],
            speedup_paired_median=statistics.median(paired),
            speedup_cpu_time=mae_s['cpu_median_s'] / famt_s['cpu_median_s'],
            flop_ratio=flops['ratio'],
            flop_ratio_same_patch_embed=flops['ratio_same_patch_embed'],
            memory=(famt_mem['step_bytes'] / mae_mem['step_bytes']
                    if famt_mem['step_bytes'] and mae_mem['step_bytes'] else None),
            **{f'refresh_vs_{bn}_step': refresh_s['images_per_s'] / mae_s['images_per_s'],
               f'refresh_vs_{bn}_step_flops': flops[f'refresh_vs_{bn}_step']},
            sampling_share_of_famt_step=sample_s['median_s'] / famt_s['median_s'],
            uint8_vs_float16_step=summary(uint8_t, batch)['images_per_s'] / famt_s['images_per_s']),
        refresh=refresh_s,
        sampling=sample_s,
        bank=dict(bytes_per_image=bank_bytes,
                  # a SimMIM bank holds one weight per mask unit, MAE's one per patch
                  **{f'bytes_per_{cell}': {k: v / n_cells for k, v in bank_bytes.items()}},
                  bytes_imagenet_1k={k: v * 1281167 for k, v in bank_bytes.items()}),
        **warm_up,
    )
    return result


def format_table(r):
    s, f, q = r['setup'], r['famt'], r['ratios']
    bn = s.get('baseline', 'mae')
    name, m, t = {'mae': 'MAE', 'simmim': 'SimMIM'}[bn], r[bn], r['tokens']
    cell = 'unit' if bn == 'simmim' else 'patch'
    mib = 2 ** 20

    def mem(x):
        return f"{x['step_bytes'] / mib:.0f}" if x['step_bytes'] is not None else 'n/a'

    lines = [
        f"{s['arch_name']} @ {s['img_size']} px, batch {s['batch']}, {s['precision']}, "
        f"{s['device']} ({s['device_name']}, {s['threads']} threads), median of {s['steps']} "
        f"steps after {s['warmup']}; load avg {s['load_avg_before'][0]:.2f} -> "
        f"{s['load_avg_after'][0]:.2f}",
        f"{'':34s}{'FAMT':>12s}{name:>12s}{' ' + name + '/FAMT':>10s}",
        f"{'encoder tokens':34s}{t['famt_encoder']:>12d}{t[bn + '_encoder']:>12d}"
        f"{t[bn + '_encoder'] / t['famt_encoder']:>10.2f}",
    ] + ([
        f"{'decoder tokens':34s}{t['famt_decoder']:>12d}{t['mae_decoder']:>12d}"
        f"{t['mae_decoder'] / t['famt_decoder']:>10.2f}",
    ] if bn == 'mae' else []) + [
        f"{'GFLOP / image (fwd+bwd)':34s}{f['flops_per_image'] / 1e9:>12.2f}"
        f"{m['flops_per_image'] / 1e9:>12.2f}{q['flop_ratio']:>10.3f}",
        f"{'step time, ms':34s}{f['step']['median_s'] * 1e3:>12.1f}"
        f"{m['step']['median_s'] * 1e3:>12.1f}"
        f"{m['step']['median_s'] / f['step']['median_s']:>10.3f}",
        f"{'images / s':34s}{f['step']['images_per_s']:>12.1f}{m['step']['images_per_s']:>12.1f}"
        f"{q['speedup']:>10.3f}",
        f"{'step peak memory, MiB':34s}{mem(f['memory']):>12s}{mem(m['memory']):>12s}"
        + (f"{1 / q['memory']:>10.2f}" if q['memory'] else f"{'':>10s}"),
        '',
        f"FAMT speed-up (images/s FAMT / {name}): {q['speedup']:.3f} measured "
        f"(paired median {q['speedup_paired_median']:.3f}, by process CPU time "
        f"{q['speedup_cpu_time']:.3f}), {q['flop_ratio']:.3f} by FLOPs "
        f"({q['flop_ratio_same_patch_embed']:.3f} if FAMT embedded all L patches as {name} does)",
        f"FAMT step with a uint8 bank: {f['step_uint8_bank']['images_per_s']:.1f} images/s "
        f"({q['uint8_vs_float16_step']:.3f} x the float16 bank)",
        f"refresh pass: {r['refresh']['images_per_s']:.1f} images/s = "
        f"{q[f'refresh_vs_{bn}_step']:.2f} x the {name} step's images/s "
        f"({q[f'refresh_vs_{bn}_step_flops']:.2f} by FLOPs)",
        f"sampling + crop mapping: {r['sampling']['median_s'] * 1e3:.2f} ms per batch = "
        f"{100 * q['sampling_share_of_famt_step']:.2f} % of the FAMT step",
        f"weight bank: {r['bank']['bytes_per_image']['float16']} B/image float16, "
        f"{r['bank']['bytes_per_image']['uint8']} B/image uint8 "
        f"({r['bank'][f'bytes_per_{cell}']['uint8']:.0f} B/{cell}); ImageNet-1K: "
        f"{r['bank']['bytes_imagenet_1k']['float16'] / mib:.0f} / "
        f"{r['bank']['bytes_imagenet_1k']['uint8'] / mib:.0f} MiB",
        f"memory measured as: {f['memory']['kind']}",
    ]
    if 'warm_up_throw' in r:
        w = r['warm_up_throw']
        lines.append(
            f"warm-up throw (random phase, mask {w['ratios'][0]} / throw {w['ratios'][1]}, "
            f"uniform): {w['step']['median_s'] * 1e3:.1f} ms per step, speed-up "
            f"{w['speedup']:.3f} over {name} (paired median {w['speedup_paired_median']:.3f}), "
            f"{w['vs_famt_step']:.3f} x the FAMT step's images/s")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(format_table(result))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'results written to {args.out}')
    return result


if __name__ == '__main__':
    main()
