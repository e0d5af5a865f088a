"""Why FAMT's attention term sits low on the objects: the object focus of each weight term on
encoders of several training lengths, sizes and objectives (docs/evaluation.md, "Object focus
of the weight terms").

The weights are the model's own (each of the mask generator's terms alone, and their
combination, as ``FAMTMAE.compute_famt_weights`` gives it), computed on the whole training
images as in a refresh; the focus is :func:`famt_mm.analysis.hooks.bank_object_focus`.
"""
import copy
from typing import Dict, Sequence

import torch

from famt_mm.compat import load_local_checkpoint

from .hooks import bank_object_focus, object_covers
from .probe import ProbeData

TERMS = ('attention', 'frequency', 'product')


def build_famt_model(famt_cfg):
    """The FAMTMAE of a config (random init), eval mode."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    import famt_mm  # noqa: F401  (registers the FAMT modules)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(famt_cfg.model))
    model.init_weights()
    return model.eval()


def load_encoder(model, state_dict: Dict[str, torch.Tensor]) -> None:
    """Put ``backbone.*`` tensors (a pre-training or classifier checkpoint) in the encoder."""
    enc = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    missing, unexpected = model.backbone.load_state_dict(enc, strict=False)
    if missing or unexpected:
        raise KeyError(f'encoder keys do not match: missing {missing}, unexpected {unexpected}')


def top_patch_focus(maps: torch.Tensor, covers: torch.Tensor, k: int = 4) -> dict:
    """Where each map's ``k`` highest patches lie.

    Args:
        maps: N x h x w weight maps; covers: N x h x w object coverage of each patch.
    Returns:
        top_share: mean over images of the share of a map's weight in its k top patches
        (k / (h w) for a flat map); top_lift: their mean object coverage over the objects'
        area share (1 = as likely on the object as a random patch, 0 = never on it); k.
    """
    w, c = maps.double().flatten(1), covers.double().flatten(1)
    top = w.topk(k, dim=1)
    share = top.values.sum(1) / w.sum(1)
    on_object = c.gather(1, top.indices).mean(1)
    return dict(k=k, top_share=float(share.mean()),
                top_lift=float(on_object.mean() / c.mean(1).mean()))


@torch.no_grad()
def term_focus(model, data: ProbeData, terms: Sequence[str] = TERMS,
               batch_size: int = 250) -> Dict[str, dict]:
    """Object focus of each weight term of ``model`` on the probe's training images."""
    covers = object_covers(data.train_set, model.grid_hw)
    gen = model.mask_generator
    maps = {t: [] for t in terms}
    for i in range(0, len(data.x_train), batch_size):
        parts = gen.weighting.compute_terms(model.famt_context(data.x_train[i:i + batch_size]))
        for t in terms:  # a term alone, sanitised as a map; 'product' = the generator's W
            chosen = parts if t == 'product' else {t: parts[t]}
            maps[t].append(gen.weighting.combine_terms(chosen)[0].view(-1, *model.grid_hw))
    out = {}
    for t, m in maps.items():
        m = torch.cat(m)
        out[t] = {**bank_object_focus(m, covers), **top_patch_focus(m, covers)}
    return out


def train_supervised(model, data: ProbeData, epochs: int = 30, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0) -> float:
    """Train ``model``'s encoder + a linear head on the CLS token to classify the shapes.

    A reference encoder whose attention has every reason to be on the object (the label is
    the object's shape). Random horizontal flips; AdamW with cosine decay. Returns the test
    top-1 (%) of the trained classifier.
    """
    g = torch.Generator().manual_seed(seed)
    enc = model.backbone
    head = torch.nn.Linear(enc.embed_dims, data.num_classes)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    steps = epochs * ((len(data.x_train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)

    def logits(x):
        return head(enc(x, mask=False)[0][:, 0])  # CLS token after the final norm

    enc.train()
    for _ in range(epochs):
        order = torch.randperm(len(data.x_train), generator=g)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x = data.x_train[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = torch.nn.functional.cross_entropy(logits(x), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    enc.eval()
    with torch.no_grad():
        pred = torch.cat([logits(data.x_test[i:i + 250]).argmax(1)
                          for i in range(0, len(data.x_test), 250)])
    return float((pred == data.y_test).double().mean() * 100)


#: encoder sizes of the study: name -> --cfg-options of the experiment's configs
SIZES = {
    '32-d x 2': {'model.backbone.arch': dict(embed_dims=32, num_layers=2, num_heads=2,
                                             feedforward_channels=128),
                 'model.neck.embed_dim': 32},
    '64-d x 4 (experiment)': {},
    '128-d x 4': {'model.backbone.arch': dict(embed_dims=128, num_layers=4, num_heads=4,
                                              feedforward_channels=512),
                  'model.neck.embed_dim': 128},
}


def run_study(out_dir: str, experiment_dir: str = None, seed: int = 0, size_epochs: int = 12,
              supervised_epochs: int = 15, sizes: Sequence[str] = tuple(SIZES), log=print,
              supervised_images: int = None):
    """Focus of the three terms: MAE at several lengths, sizes, and a supervised encoder.

    ``supervised_images``: train the supervised encoder on that many images of split
    'train' instead of the pre-training ones (its focus is measured on the latter).
    """
    import json
    import os
    import os.path as osp
    from mmengine.config import Config
    from . import experiment as exp
    os.makedirs(out_dir, exist_ok=True)
    # the experiment's data and model options (its --quick ones, say), when it has a summary
    run_opts, num_test = {}, 1000
    summary = osp.join(experiment_dir or '', 'results.json')
    if experiment_dir and osp.isfile(summary):
        with open(summary) as fh:
            settings = json.load(fh)['settings']
        run_opts, num_test = settings.get('cfg_options') or {}, settings['num_test']
    famt_cfg = Config.fromfile(exp.FAMT_CONFIG)
    famt_cfg.merge_from_dict(copy.deepcopy(run_opts))
    data, _ = exp.probe_data(dict(num_test=num_test, cfg_options=run_opts))
    rows = []

    def record(what, model, **extra):
        row = dict(what=what, **extra, focus=term_focus(model, data))
        rows.append(row)
        f = row['focus']
        log(f"{what}: lift attention {f['attention']['lift']:.2f}, frequency "
            f"{f['frequency']['lift']:.2f}, A x F {f['product']['lift']:.2f} "
            f"(objects {100 * f['product']['object_area']:.1f}% of the area); attention's top "
            f"{f['attention']['k']} patches: {100 * f['attention']['top_share']:.0f}% of its "
            f"weight, lift {f['attention']['top_lift']:.2f}")
        with open(osp.join(out_dir, 'focus_study.json'), 'w') as fh:
            json.dump(rows, fh, indent=1)

    # 1. training length: the MAE run of the experiment, random init -> its snapshots -> end
    mae_dir = osp.join(experiment_dir or '', f'seed{seed}', exp.run_name('MAE', 'epochs') +
                       '.json')
    if experiment_dir and osp.isfile(mae_dir):
        with open(mae_dir) as fh:
            mae = json.load(fh)
        points = [(0.0, osp.join(osp.dirname(mae['train']['checkpoint']), 'init.pth'))]
        points += [(s['epochs'], s['path']) for s in mae['train']['snapshots']]
        points.append((mae['train']['epochs'], mae['train']['checkpoint']))
        for epochs, path in points:
            model = build_famt_model(famt_cfg)
            load_encoder(model, load_local_checkpoint(path, map_location='cpu')['state_dict'])
            record(f'MAE (experiment encoder), {epochs:.1f} epochs', model, kind='length',
                   epochs=epochs)
    # 2. model size: MAE of each size for size_epochs epochs (the experiment's recipe)
    for name in sizes:
        opts = {**run_opts, **SIZES[name]}
        settings = dict(epochs=size_epochs, clock='cpu', warmup_frac=0.1, famt_start_frac=0.25,
                        famt_interval_frac=0.25, cfg_options=opts)
        cfg = exp.build_cfg('MAE', osp.join(out_dir, f'size_{name.split()[0]}'), seed, settings)
        stats = exp.pretrain(cfg)
        size_cfg = copy.deepcopy(famt_cfg)
        size_cfg.merge_from_dict(copy.deepcopy(SIZES[name]))
        model = build_famt_model(size_cfg)
        load_encoder(model, load_local_checkpoint(stats['checkpoint'],
                                                 map_location='cpu')['state_dict'])
        record(f'MAE {name}, {size_epochs} epochs', model, kind='size', size=name,
               epochs=size_epochs, cpu_seconds=stats['seconds'])
    # 3. objective: the experiment's encoder trained supervised on the shape labels
    if supervised_epochs:
        torch.manual_seed(seed)
        model = build_famt_model(famt_cfg)
        sup_data, images = data, len(data.x_train)
        if supervised_images:  # more images than pre-training: a better classifier
            opts = {**run_opts, 'train_dataloader.dataset.num_samples': supervised_images}
            sup_data, _ = exp.probe_data(dict(num_test=num_test, cfg_options=opts))
            images = supervised_images
        top1 = train_supervised(model, sup_data, epochs=supervised_epochs, seed=seed)
        record(f'supervised (experiment encoder), {images} images x {supervised_epochs} '
               f'epochs (test top-1 {top1:.1f}%)', model.eval(), kind='supervised',
               epochs=supervised_epochs, images=images, test_top1=top1)
    return rows
