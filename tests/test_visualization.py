"""Pictures: famt_mm.visualization, tools/visualization/vis_famt_masks.py and
FAMTVisualizationHook (through the real mmengine Runner)."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from famt_mm.visualization import (MASKED_RGB, THROWN_RGB, compose_famt_grid, famt_panels,
                                   overlay_flags, panel_box, reconstruct_image)
from tests.conftest import FAMT_DEMO, MAE_DEMO, run_tool, tiny_cfg, write_tiny_config

L, GRID, PATCH, SIZE = 16, (4, 4), 8, 32  # the tiny configs of conftest


def build_tiny(config, tmp_path, norm_pix=True):
    import famt_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = tiny_cfg(tmp_path / 'w', config=config)
    model_cfg = cfg.model.copy()
    model_cfg['data_preprocessor'] = cfg.data_preprocessor
    model_cfg['head']['norm_pix'] = norm_pix
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def same_stats_images(batch=2, seed=0):
    """B x 3 x 32 x 32 where every 8 x 8 patch holds a permutation of the same 192 values,
    so every patch has the same mean and variance."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(PATCH * PATCH * 3, generator=g) * 0.7 + 0.3
    patches = torch.stack([torch.stack([values[torch.randperm(values.numel(), generator=g)]
                                        for _ in range(L)]) for _ in range(batch)])
    return patches  # B x L x p*p*3 (head.patchify layout)


class OracleDecoder(nn.Module):
    """A decoder that predicts exactly the head's (norm-pix) targets of the asked patches."""

    def __init__(self, head, inputs):
        super().__init__()
        self.target = head.construct_target(inputs)  # B x L x p*p*3

    def forward(self, latent, ids_restore):  # mmpretrain MAE: all L patches
        return self.target

    def forward_famt(self, latent, ids_visible, ids_masked):  # FAMTMAE: the masked ones
        return torch.gather(self.target, 1,
                            ids_masked.unsqueeze(-1).expand(-1, -1, self.target.shape[-1]))


def split_from_flags(flags):
    return [(flags == v).nonzero().flatten() for v in (1, -1, 0)]


@pytest.mark.parametrize('norm_pix', [True, False])
def test_reconstruction_of_an_oracle_equals_the_image(tmp_path, norm_pix):
    model = build_tiny(FAMT_DEMO, tmp_path, norm_pix=norm_pix)
    inputs = model.head.unpatchify(same_stats_images())
    model.neck = OracleDecoder(model.head, inputs)
    panels = famt_panels(model, inputs, generator=torch.Generator().manual_seed(0))
    flags = panels['flags'].flatten(1)
    recon = model.head.patchify(panels['recon'])
    truth = model.head.patchify(inputs)
    for b in range(inputs.shape[0]):
        masked, thrown, visible = split_from_flags(flags[b])
        assert (len(masked), len(thrown), len(visible)) == (7, 6, 3)  # L=16, .45 / .40
        # masked patches: the de-normalised prediction is the true patch
        torch.testing.assert_close(recon[b, masked], truth[b, masked], atol=1e-4, rtol=1e-4)
        assert torch.equal(recon[b, visible], truth[b, visible])
        assert recon[b, thrown].abs().max() == 0


def test_denormalisation_uses_the_visible_patches_statistics(tmp_path):
    model = build_tiny(FAMT_DEMO, tmp_path)
    head = model.head
    patches = same_stats_images(batch=1)
    patches[0, 5] = patches[0, 5] * 2.0 + 1.0  # a masked patch brighter than the visible ones
    inputs = head.unpatchify(patches)
    ids_visible = torch.tensor([[0, 1, 2]])
    ids_masked = torch.tensor([[5, 9]])
    pred = torch.gather(head.construct_target(inputs), 1, ids_masked[..., None].expand(-1, -1, 192))
    recon = head.patchify(reconstruct_image(head, inputs, pred, ids_masked, ids_visible))
    # patch 9 shares the visible statistics: exact; patch 5 keeps its shape but takes the
    # visible patches' mean and spread (a viewer cannot know its own)
    torch.testing.assert_close(recon[0, 9], patches[0, 9], atol=1e-4, rtol=1e-4)
    vis = patches[0, :3]
    expected = (patches[0, 5] - patches[0, 5].mean()) / (patches[0, 5].var() + 1e-6) ** .5
    expected = expected * (vis.var(-1).mean() + 1e-6) ** .5 + vis.mean()
    torch.testing.assert_close(recon[0, 5], expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(recon[0, 5], patches[0, 5], atol=1e-2)
    assert torch.equal(recon[0, :3], patches[0, :3])
    assert recon[0, [3, 4, 6, 7, 8] + list(range(10, 16))].abs().max() == 0


def test_plain_mae_draws_its_own_random_masking(tmp_path):
    model = build_tiny(MAE_DEMO, tmp_path)
    inputs = model.head.unpatchify(same_stats_images())
    model.neck = OracleDecoder(model.head, inputs)
    panels = famt_panels(model, inputs, seed=3)
    assert panels['famt'] is False
    flags = panels['flags'].flatten(1)
    assert ((flags == 1).sum(1) == 12).all() and ((flags == -1).sum(1) == 0).all()  # MAE 0.75
    torch.testing.assert_close(panels['recon'], inputs, atol=1e-4, rtol=1e-4)
    # same seed, same mask; the global random state is left alone
    state = torch.get_rng_state()
    assert torch.equal(famt_panels(model, inputs, seed=3)['flags'], panels['flags'])
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(famt_panels(model, inputs, seed=4)['flags'], panels['flags'])


def test_overlay_colours_land_on_the_right_patches():
    # a non-square grid: 2 x 3 patches of 8 px on a 16 x 24 image
    image = np.random.default_rng(0).uniform(0, 1, (16, 24, 3))
    flags = np.array([[1, 0, -1], [0, -1, 1]])
    out = overlay_flags(image, flags, alpha=0.65)
    for i in range(2):
        for j in range(3):
            cell = (slice(8 * i, 8 * i + 8), slice(8 * j, 8 * j + 8))
            if flags[i, j] == 0:
                expected = image[cell]
            else:
                colour = MASKED_RGB if flags[i, j] == 1 else THROWN_RGB
                expected = 0.35 * image[cell] + 0.65 * colour
            np.testing.assert_allclose(out[cell], expected, atol=1e-12)
    # in the reconstruction panel thrown patches are painted, masked ones left alone
    recon = overlay_flags(image, flags, alpha=1.0, show_masked=False)
    np.testing.assert_allclose(recon[0:8, 16:24], np.broadcast_to(THROWN_RGB, (8, 8, 3)))
    np.testing.assert_allclose(recon[0:8, 0:8], image[0:8, 0:8])


def classify_overlay_cells(grid, row, img_hw, grid_hw):
    """Per patch of the 'mask/throw/vis' panel: 1 masked, -1 thrown, 0 visible, from pixels."""
    y0, y1, x0, x1 = panel_box(row, 0, img_hw)
    image = grid[y0:y1, x0:x1].astype(float) / 255
    y0, y1, x0, x1 = panel_box(row, 4, img_hw)
    overlay = grid[y0:y1, x0:x1].astype(float) / 255
    ch, cw = image.shape[0] // grid_hw[0], image.shape[1] // grid_hw[1]
    out = np.zeros(grid_hw, dtype=int)
    for i in range(grid_hw[0]):
        for j in range(grid_hw[1]):
            cell = (slice(i * ch, (i + 1) * ch), slice(j * cw, (j + 1) * cw))
            errors = {v: np.abs(overlay[cell] - (image[cell] if v == 0 else
                                                 0.35 * image[cell] + 0.65 * c)).max()
                      for v, c in ((0, None), (1, MASKED_RGB), (-1, THROWN_RGB))}
            value, err = min(errors.items(), key=lambda kv: kv[1])
            assert err < 3 / 255, f'cell {(i, j)} matches no overlay colour ({errors})'
            out[i, j] = value
    return out


def test_grid_layout_puts_each_panel_where_panel_box_says(tmp_path):
    model = build_tiny(FAMT_DEMO, tmp_path)
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 3, SIZE, SIZE, generator=g)
    panels = famt_panels(model, inputs, generator=torch.Generator().manual_seed(1))
    images = np.random.default_rng(1).uniform(0.1, 0.9, (2, SIZE, SIZE, 3))
    grid = compose_famt_grid(images, panels, recon_images=images, names=['a', 'b'])
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    for b in range(2):
        assert np.array_equal(classify_overlay_cells(grid, b, (SIZE, SIZE), GRID),
                              panels['flags'][b].numpy())


def test_script_draws_a_tiny_checkpoint(tmp_path):
    from mmengine.runner import save_checkpoint
    cfg_file = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO)
    model = build_tiny(FAMT_DEMO, tmp_path)
    ckpt = str(tmp_path / 'tiny.pth')
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out_dir = tmp_path / 'vis'
    proc = run_tool(['tools/visualization/vis_famt_masks.py', cfg_file, ckpt,
                     '--indices', '0', '3', '7', '--out-dir', str(out_dir), '--device', 'cpu'])
    assert 'wrote' in proc.stdout
    grid = cv2.imread(str(out_dir / 'famt_masks.png'))[..., ::-1]
    rows, cols = 3, 6
    bottom = panel_box(rows - 1, cols - 1, (SIZE, SIZE))
    assert grid.shape[0] > bottom[1] and grid.shape[1] >= bottom[3]
    tiles = [grid[slice(*panel_box(0, j, (SIZE, SIZE))[:2]),
                  slice(*panel_box(0, j, (SIZE, SIZE))[2:])].astype(int) for j in range(cols)]
    for j in range(cols):  # every panel holds a picture (not blank), and they all differ
        assert tiles[j].std() > 5
        for k in range(j):
            assert np.abs(tiles[j] - tiles[k]).mean() > 5, (j, k)
    # the split panel shows the FAMT counts (L=16: 7 masked, 6 thrown, 3 visible) per image
    for r in range(rows):
        flags = classify_overlay_cells(grid, r, (SIZE, SIZE), GRID)
        assert [(flags == v).sum() for v in (1, -1, 0)] == [7, 6, 3]
    # a checkpoint that does not fit the config is an error, not a silent random model
    bad = str(tmp_path / 'bad.pth')
    save_checkpoint({'state_dict': {'backbone.cls_token': torch.zeros(1, 1, 7)}}, bad)
    proc = run_tool(['tools/visualization/vis_famt_masks.py', cfg_file, bad,
                     '--out-dir', str(out_dir)], check=False)
    assert proc.returncode != 0 and 'size mismatch' in proc.stderr


def test_script_draws_a_plain_mae_in_process(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'vis_famt_masks', osp.join(osp.dirname(osp.dirname(__file__)),
                                   'tools/visualization/vis_famt_masks.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg_file = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO)
    out = tool.main([cfg_file, '--indices', '1', '2', '--out-dir', str(tmp_path / 'v'),
                     '--device', 'cpu'])
    assert out.endswith('mae_masks.png')
    grid = cv2.imread(out)[..., ::-1]
    for r in range(2):
        flags = classify_overlay_cells(grid, r, (SIZE, SIZE), GRID)
        assert (flags == 1).sum() == 12 and (flags == -1).sum() == 0


def test_hook_leaves_a_picture_per_refresh(tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_cfg(tmp_path / 'work', max_epochs=3, custom_hooks=[
        dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=8, num_workers=0),
        dict(type='FAMTVisualizationHook', indices=[0, 5])])
    runner = Runner.from_cfg(cfg)
    runner.train()
    vis = [h for h in runner.hooks if type(h).__name__ == 'FAMTVisualizationHook'][0]
    assert vis.drawn_epochs == [1, 2]  # refreshes before epochs 1 and 2, never after the last
    image_dir = osp.join(runner.log_dir, 'vis_data', 'vis_image')
    pictures = {}
    for epoch in (1, 2):  # pictures are named by the 1-based epoch, as mmengine's lines
        path = osp.join(image_dir, f'famt_masks_{epoch + 1}.png')
        assert osp.isfile(path), path
        pictures[epoch] = cv2.imread(path)[..., ::-1]
    assert not osp.exists(osp.join(image_dir, 'famt_masks_1.png'))
    assert not osp.exists(osp.join(image_dir, 'famt_masks_4.png'))
    assert pictures[1].shape == pictures[2].shape
    assert pictures[1].shape[0] > panel_box(1, 5, (SIZE, SIZE))[1]  # two rows, six columns
    for r in range(2):
        flags = classify_overlay_cells(pictures[2], r, (SIZE, SIZE), GRID)
        assert [(flags == v).sum() for v in (1, -1, 0)] == [7, 6, 3]
    # same images, same seed: the difference is the model, trained one more epoch
    assert not np.array_equal(pictures[1], pictures[2])


def test_hook_needs_the_weight_hook_and_valid_indices(tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_cfg(tmp_path / 'a', max_epochs=2, custom_hooks=[
        dict(type='FAMTVisualizationHook')])
    with pytest.raises(ValueError, match='FAMTWeightHook'):
        Runner.from_cfg(cfg).train()
    cfg = tiny_cfg(tmp_path / 'b', max_epochs=2, custom_hooks=[
        dict(type='FAMTWeightHook', start_epoch=1, interval=1),
        dict(type='FAMTVisualizationHook', indices=[0, 40])])
    with pytest.raises(ValueError, match=r'\[40\]'):
        Runner.from_cfg(cfg).train()


def test_famt_simmim_panels_split_on_units_and_reconstruct_the_masked_patches():
    from tests.test_models.test_famt_simmim import IMG, PATCH, build, simmim_cfg
    torch.manual_seed(0)
    model = build(simmim_cfg()).eval()  # 8 x 8 patches, 4 x 4 units of 2 x 2 patches
    inputs = torch.randn(2, 3, IMG, IMG)
    panels = famt_panels(model, inputs, generator=torch.Generator().manual_seed(0))
    assert panels['famt'] is True and panels['weights'].shape == panels['flags'].shape == (2, 4, 4)
    assert all(t.shape == (2, 8, 8) for t in panels['terms'].values())  # terms: patch grid
    flags = panels['flags'].flatten(1)
    assert [int((flags[0] == v).sum()) for v in (1, -1, 0)] == [7, 4, 5]  # .44 / .26 of 16
    # per patch: visible pixels as given, thrown ones zero, masked ones the decoder's
    per_patch = flags.view(2, 4, 1, 4, 1).expand(2, 4, 2, 4, 2).reshape(2, 8, 8)
    pix = per_patch.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2).unsqueeze(1)
    recon = panels['recon']
    assert torch.equal(recon * (pix == 0), inputs * (pix == 0))
    assert recon[(pix == -1).expand_as(recon)].abs().max() == 0
    masked = (pix == 1).expand_as(recon)
    assert not torch.allclose(recon[masked], inputs[masked], atol=0.1)
    # without a pixel reconstruction (famt_reconstruct -> None) the column is left out
    images = np.random.default_rng(0).uniform(0.1, 0.9, (2, IMG, IMG, 3))
    with_recon = compose_famt_grid(images, panels, recon_images=images)
    panels['recon'] = None
    without = compose_famt_grid(images, panels, recon_images=None)
    cols = 2 + len(panels['terms']) + 1
    assert without.shape[1] == panel_box(0, cols - 1, (IMG, IMG))[3]
    assert with_recon.shape[1] == panel_box(0, cols, (IMG, IMG))[3]
