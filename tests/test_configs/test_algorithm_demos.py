"""Every FAMT demo config (configs/famt_*_demo*.py, one per algorithm and variant) trains with
tools/train.py through the switch to FAMT and one refresh with FAMTVisualizationHook on, leaves
a picture per refresh, and its last checkpoint converts with famt2target.py to mmdet and mmseg
backbones of the same ViT that load it with every key matched.

The demo runs as written (its model, pipeline and dataset), shrunk only in what every demo
shares: 16 images of its embedded SyntheticObjects dataset, batch 8, 3 epochs, FAMT from
epoch 2 (1-based) with a refresh before epochs 2 and 3. The time of each part is printed
(``pytest -s``) so that the CI cost of a new demo is visible.
"""
import glob
import os.path as osp
import re
import time

import pytest
from mmengine.config import Config

from tests.conftest import REPO, run_tool

DEMOS = sorted(glob.glob(osp.join(REPO, 'configs', 'famt_*_demo*.py')))  # variants too
EPOCHS = 3  # epoch 1 random masking; refresh (the switch) before 2, a refresh before 3
NUM_IMAGES, BATCH = 16, 8

#: Parameters a target backbone has that no pre-training has (its config's allowed_missing).
NEW_IN_TARGET = {'mmdet': ['layers.*.attn.rel_pos_*'],
                 'mmseg': ['layers.*.gamma_*', 'layers.*.attn.relative_position_*']}
#: BEiT-style targets (famt_mm/transfer/beit.py) take every weight: nothing is new.
NEW_IN_BEIT_TARGET = {'mmdet': [], 'mmseg': []}


def test_every_algorithm_has_a_demo():
    names = [osp.basename(p) for p in DEMOS]
    assert 'famt_mae_vit-t_demo.py' in names and 'famt_simmim_vit-t_demo.py' in names, names


def shrunk_demo(config: str, path: str) -> Config:
    """``config`` with 16 images, batch 8, 3 epochs, FAMT from epoch 2 and the pictures on."""
    cfg = Config.fromfile(config)
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'SyntheticObjects', (
        f'{osp.basename(config)}: a demo trains on the embedded SyntheticObjects dataset '
        f'(conventions of issue 17), found {dataset.type}')
    hooks = [dict(h) for h in cfg.get('custom_hooks', [])]
    weight = [h for h in hooks if h['type'] == 'FAMTWeightHook']
    assert len(weight) == 1, f'{osp.basename(config)}: one FAMTWeightHook, found {hooks}'
    weight[0].update(start_epoch=1, interval=1, batch_size=BATCH, num_workers=0)
    vis = [h for h in hooks if h['type'] == 'FAMTVisualizationHook']
    if vis:
        vis[0]['indices'] = [0, 1]
    else:
        hooks.append(dict(type='FAMTVisualizationHook', indices=[0, 1]))
    cfg.merge_from_dict({
        'train_cfg.max_epochs': EPOCHS,
        'train_dataloader.batch_size': BATCH, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.num_samples': NUM_IMAGES,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': EPOCHS})
    cfg.custom_hooks = hooks
    cfg.dump(path)
    return cfg


def vit_arch(cfg: Config) -> dict:
    """embed_dims, num_layers, num_heads, feedforward_channels of the demo's encoder."""
    arch = cfg.model.backbone.get('arch', 'b')
    if isinstance(arch, str):
        from mmpretrain.models.backbones import VisionTransformer
        arch = VisionTransformer.arch_zoo[arch]
    return {k: arch[k] for k in ('embed_dims', 'num_layers', 'num_heads',
                                 'feedforward_channels')}


def target_backbone(target: str, arch: dict, img_size: int, patch_size: int,
                    beit: bool = False):
    """The backbone mmdet's / mmseg's transfer configs build, with the demo's ViT; ``beit``:
    the BEiT-style ones a BEiT encoder converts to (famt_mm/transfer/beit.py)."""
    if beit and target == 'mmdet':
        from mmpretrain.models.backbones import BEiTViT
        return BEiTViT(arch=arch, img_size=img_size, patch_size=patch_size, out_type='featmap',
                       use_rel_pos_bias=True, use_shared_rel_pos_bias=False, final_norm=False)
    if beit:
        from mmseg.models.backbones import BEiT
        return BEiT(img_size=img_size, patch_size=patch_size, embed_dims=arch['embed_dims'],
                    num_layers=arch['num_layers'], num_heads=arch['num_heads'],
                    mlp_ratio=arch['feedforward_channels'] // arch['embed_dims'],
                    norm_cfg=dict(type='LN', eps=1e-6), out_indices=[arch['num_layers'] - 1])
    if target == 'mmdet':
        from famt_mm.transfer.vitdet import ViTDetBackbone
        grid = img_size // patch_size
        window = grid // 2 if grid % 2 == 0 else 0
        return ViTDetBackbone(arch=arch, img_size=img_size, patch_size=patch_size,
                              window_size=window,
                              window_block_indexes=list(range(arch['num_layers'] - 1)))
    from mmseg.models.backbones import MAE
    assert arch['feedforward_channels'] % arch['embed_dims'] == 0, arch  # mmseg: an mlp_ratio
    return MAE(img_size=img_size, patch_size=patch_size, embed_dims=arch['embed_dims'],
               num_layers=arch['num_layers'], num_heads=arch['num_heads'],
               mlp_ratio=arch['feedforward_channels'] // arch['embed_dims'],
               out_indices=[arch['num_layers'] - 1], init_values=1.0)


@pytest.mark.parametrize('config', DEMOS, ids=[osp.basename(p)[:-3] for p in DEMOS])
def test_demo_trains_through_a_refresh_draws_and_converts(config, tmp_path):
    from famt_mm.transfer.checkpoint import load_strict_pretrained
    from tools.model_converters.famt2target import main as famt2target

    cfg = shrunk_demo(config, str(tmp_path / 'demo.py'))
    work = str(tmp_path / 'work')
    t0 = time.perf_counter()
    proc = run_tool(['tools/train.py', str(tmp_path / 'demo.py'), '--work-dir', work])
    t_train = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    refreshed = sorted(int(e) for e in re.findall(r'FAMT refresh before epoch (\d+)', log))
    assert refreshed == [2, 3], refreshed  # the switch, then one refresh
    assert 'epoch 2 trains with FAMT masking and throwing' in log
    # a picture per refresh, named by the 1-based epoch it was drawn before
    pictures = glob.glob(osp.join(work, '*', 'vis_data', 'vis_image', 'famt_masks_*.png'))
    drawn = sorted(int(re.search(r'famt_masks_(\d+)\.png', p).group(1)) for p in pictures)
    assert drawn == refreshed, (drawn, pictures)

    t0 = time.perf_counter()
    checkpoint = osp.join(work, f'epoch_{EPOCHS}.pth')
    arch = vit_arch(cfg)
    img_size, patch_size = cfg.model.backbone.img_size, cfg.model.backbone.patch_size
    for target in ('mmdet', 'mmseg'):
        dst = str(tmp_path / f'{target}.pth')
        info = famt2target([checkpoint, dst, '--target', target])
        assert (info['embed_dims'], info['num_layers'], info['patch_size']) == (
            arch['embed_dims'], arch['num_layers'], patch_size)
        beit = info.get('style') == 'beit'
        backbone = target_backbone(target, arch, img_size, patch_size, beit)
        # every converted key loads, and every backbone key but the target's new ones is given
        new = (NEW_IN_BEIT_TARGET if beit else NEW_IN_TARGET)[target]
        loaded = load_strict_pretrained(backbone, dst, allowed_missing=new)
        assert len(loaded) == info['num_tensors']
    t_convert = time.perf_counter() - t0
    print(f'\n{osp.basename(config)}: train {t_train:.1f} s (tools/train.py, {EPOCHS} epochs of '
          f'{NUM_IMAGES} images), convert + load mmdet and mmseg {t_convert:.1f} s')
