"""FLOPs of one training-step forward: each FAMT algorithm against mmpretrain's own.

Counting: ``torch.utils.flop_counter.FlopCounterMode`` while the real forward runs (the loss
of one step, in training mode, no backward), i.e. every matmul, linear, convolution and
attention at the aten level, 2 FLOPs per multiply-add; torch does not count its CPU attention
kernel, which is added here with torch's own attention formula. The count therefore follows
whatever an algorithm's code runs (the tokens it drops, its decoder, regressor or teacher)
with no formula per algorithm; element-wise ops, norms and softmax are not counted (a few %
of a ViT step, alike on both sides).

The FAMT model runs ``famt_loss`` on a split drawn with its FAMT-phase ratios (uniform
weights: the counts, not the places, set the FLOPs); mmpretrain's model runs ``loss`` with the
mask its recipe's pipeline transform draws (``*MaskGenerator``), or its own masking (MAE).

:data:`FLOP_PAIRS`: one line per FAMT algorithm, ``plain algorithm -> (FAMT config, plain
config)``; an entry whose batch is not one image B x 3 x H x W gives ``make_batch``, one whose
teacher is a download gives ``model_options`` (a teacher of the same shape, random weights).
"""
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ['FlopPair', 'FLOP_PAIRS', 'count_flops', 'step_flops', 'flop_ratio_rows',
           'format_rows', 'two_view_batch']


class FlopPair(NamedTuple):
    """A FAMT config and the plain mmpretrain config it is measured against.

    model_options: ``{'model.x': ...}`` merged onto both configs before building, e.g. a
    teacher of the pretrained one's shape with random weights where that one is a download.
    make_batch: ``(model, cfg, batch, hw) -> (inputs, data_samples)`` for algorithms whose
    inputs are not one image tensor (default: :func:`image_batch`).
    """
    famt_config: str
    plain_config: str
    make_batch: Optional[Callable] = None
    model_options: Optional[dict] = None  # merged onto both configs (``merge_from_dict``)


#: Known pairs at ViT-B/16, 224 px, by mmpretrain algorithm; add one line per algorithm.
FLOP_PAIRS: Dict[str, FlopPair] = {
    'MAE': FlopPair('configs/famt_mae_vit-b_in1k.py', 'configs/mae_vit-b_in1k.py'),
    'SimMIM': FlopPair('configs/famt_simmim_vit-b-p16_in1k.py',
                       'configs/simmim_vit-b-p16_in1k.py'),
    'MaskFeat': FlopPair('configs/famt_maskfeat_vit-b-p16_in1k.py',
                         'configs/maskfeat_vit-b-p16_in1k.py'),
    'MILAN': FlopPair('configs/famt_milan_vit-b-p16_in1k.py', 'configs/milan_vit-b-p16_in1k.py',
                      model_options={'model.target_generator': dict(  # CLIP ViT-B/16's shape
                          _delete_=True, type='RandomCLIPGenerator', img_size=224, patch_size=16,
                          width=768, num_layers=12, out_dims=512)}),
    'MFF': FlopPair('configs/famt_mff_vit-b-p16_in1k.py', 'configs/mff_vit-b-p16_in1k.py'),
    'EVA': FlopPair('configs/famt_eva_vit-b-p16_in1k.py', 'configs/eva_vit-b-p16_in1k.py',
                    model_options={'model.target_generator': dict(  # CLIP ViT-B/16's shape
                        _delete_=True, type='RandomCLIPGenerator', img_size=224, patch_size=16,
                        width=768, num_layers=12, out_dims=512)}),
    'CAE': FlopPair('configs/famt_cae_beit-base-p16_in1k.py', 'configs/cae_beit-base-p16_in1k.py',
                    lambda *args: two_view_batch(*args)),
    'BEiT': FlopPair('configs/famt_beit_vit-b-p16_in1k.py', 'configs/beit_vit-b-p16_in1k.py',
                     lambda *a: two_view_batch(*a)),
    'BEiT v2': FlopPair('configs/famt_beitv2_vit-b-p16_in1k.py',
                        'configs/beitv2_vit-b-p16_in1k.py', lambda *a: two_view_batch(*a)),
}


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` (forward ops only)."""
    extra = {}
    cpu_attention = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)
    if cpu_attention is not None:
        extra[cpu_attention] = _cpu_attention_flops
    with FlopCounterMode(display=False, custom_mapping=extra) as counter:
        fn()
    return counter.get_total_flops()


def _build(config: str, model_options: Optional[dict] = None):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import famt_mm  # noqa: F401  (registers the modules)
    in_repo = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), config)
    cfg = Config.fromfile(config if osp.isfile(config) or not osp.isfile(in_repo) else in_repo)
    if model_options:
        cfg.merge_from_dict(model_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return MODELS.build(cfg.model), cfg  # no init_weights: no pretrained teacher is read


def _recipe_mask(cfg, hw: Tuple[int, int]) -> Optional[torch.Tensor]:
    """The mask the recipe's pipeline draws for one image (its ``*MaskGenerator``), if any."""
    import numpy as np
    from mmpretrain.registry import TRANSFORMS
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    steps = [t for t in pipeline if str(t.get('type', '')).endswith('MaskGenerator')]
    if not steps:
        return None
    out = TRANSFORMS.build(dict(steps[-1])).transform(dict(img=np.zeros((*hw, 3), np.uint8)))
    return torch.as_tensor(out['mask'])


def image_batch(model, cfg, batch: int, hw: Tuple[int, int]) -> Tuple[torch.Tensor, List]:
    """One random image per sample and data samples with the recipe's mask (if it has one)."""
    from mmpretrain.structures import DataSample
    inputs = torch.randn(batch, 3, *hw, generator=torch.Generator().manual_seed(0))
    samples = []
    for i in range(batch):
        sample = DataSample(metainfo=dict(sample_idx=i, famt_crop=(0., 0., 1., 1.), flip=False))
        mask = _recipe_mask(cfg, hw)
        if mask is not None:
            sample.set_mask(mask)
        samples.append(sample)
    return inputs, samples


def two_view_batch(model, cfg, batch: int, hw: Tuple[int, int]) -> Tuple[List, List]:
    """:func:`image_batch` plus the tokenizer's view (BEiT, CAE): a second random image per
    sample at the recipe's two-view crop's ``second_size``."""
    inputs, samples = image_batch(model, cfg, batch, hw)
    for module in model.modules():  # VQ-KD: a loaded codebook has had its k-means init
        if isinstance(getattr(module, 'initted', None), torch.Tensor):
            module.initted.fill_(1)
    crop = [t for t in cfg.train_dataloader.dataset.pipeline
            if str(t.get('type', '')).endswith('WithTwoPic')][-1]
    side = crop.get('second_size') or hw[0]
    second = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(1))
    return [inputs, second], samples


# grad mode stays on (nothing runs backward): under no_grad a view of a parameter (CAE's
# expanded mask token) keeps requires_grad without a grad_fn, which FlopCounterMode rejects
def step_flops(config: str, batch: int = 1, make_batch: Optional[Callable] = None,
               model_options: Optional[dict] = None,
               hw: Optional[Tuple[int, int]] = None) -> dict:
    """FLOPs of one training-step forward of ``config``'s model.

    A FAMT algorithm runs ``famt_loss`` on a split of its FAMT-phase counts; any other model
    runs its ``loss``. Returns dict(model, input_hw, total (per image), counts (of the FAMT
    split's patches)).
    """
    from famt_mm.models.famt_algorithm import is_famt_model
    from famt_mm.models.famt_sampling import plackett_luce_split, split_counts
    model, cfg = _build(config, model_options)
    model.train()
    famt = is_famt_model(model)
    if hw is None:
        hw = tuple(model.input_hw) if famt else tuple(
            int(s) for s in model.backbone.patch_embed.init_input_size)
    inputs, samples = (make_batch or image_batch)(model, cfg, batch, hw)
    if famt:
        gen = model.mask_generator
        cells = model.grid_hw[0] * model.grid_hw[1]
        n_mask, n_throw, _ = split_counts(cells, gen.mask_ratio, gen.throw_ratio)
        units = plackett_luce_split(torch.ones(batch, cells), n_mask, n_throw,
                                    torch.Generator().manual_seed(0))
        split = model.split_from_units(units)
        run = lambda: model.famt_loss(inputs, samples, split)  # noqa: E731
        counts = dict(masked=split.masked.shape[1], thrown=split.thrown.shape[1],
                      visible=split.visible.shape[1])
    else:
        run = lambda: model.loss(inputs, samples)  # noqa: E731
        counts = {}
    return dict(model=type(model).__name__, input_hw=hw, total=count_flops(run) / batch,
                counts=counts)


def flop_ratio_rows(pairs: Dict[str, FlopPair], batch: int = 1) -> List[dict]:
    """One row per pair: FAMT and plain FLOPs per image and their ratio."""
    rows = []
    for name, pair in pairs.items():
        famt = step_flops(pair.famt_config, batch, pair.make_batch, pair.model_options)
        plain = step_flops(pair.plain_config, batch, pair.make_batch, pair.model_options,
                           hw=famt['input_hw'])
        rows.append(dict(algorithm=name, famt=famt, plain=plain,
                         ratio=famt['total'] / plain['total']))
    return rows


def format_rows(rows: List[dict]) -> str:
    """A Markdown table of :func:`flop_ratio_rows`' rows (GFLOPs per image)."""
    lines = ['| algorithm | input | FAMT split (masked / thrown / visible patches) | '
             'FAMT GFLOPs | plain GFLOPs | FAMT / plain |',
             '|---|---|---|---|---|---|']
    for r in rows:
        f, p, c = r['famt'], r['plain'], r['famt']['counts']
        lines.append(
            f"| {r['algorithm']} | {f['input_hw'][0]} x {f['input_hw'][1]} | "
            f"{c.get('masked')} / {c.get('thrown')} / {c.get('visible')} | "
            f"{f['total'] / 1e9:.2f} | {p['total'] / 1e9:.2f} | {r['ratio']:.3f} |")
    return '\n'.join(lines)
