"""Tests of the embedded ``SyntheticObjects`` dataset (CPU only, fast)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import famt_mm.datasets  # noqa: F401  (registers SyntheticObjects)
from famt_mm.datasets.synthetic_objects import (OBJECT_SCALE_RANGE,
                                                SHAPE_CLASSES,
                                                SyntheticObjects,
                                                mask_cell_fraction)

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAE_PIPELINE = [
    dict(
        type='RandomResizedCrop',
        scale=64,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]


def _make(**kwargs):
    """Small datasets skip serialisation (mmengine runs gc.collect() there)."""
    kwargs.setdefault('serialize_data', False)
    return SyntheticObjects(**kwargs)


@pytest.fixture(scope='module')
def full_train():
    return SyntheticObjects(num_samples=2000, seed=0, split='train')


def _band(mask, width=3):
    """Pixels within ``width`` (4-connected steps) outside the mask."""
    grown = mask.copy()
    for _ in range(width):
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    return grown & ~mask


def test_deterministic_across_instances_and_calls():
    a = SyntheticObjects(num_samples=64, seed=3)
    b = SyntheticObjects(num_samples=64, seed=3, serialize_data=False)
    for idx in (0, 1, 17, 63):
        img = a.get_image(idx)
        np.testing.assert_array_equal(img, a.get_image(idx))
        np.testing.assert_array_equal(img, b.get_image(idx))
        np.testing.assert_array_equal(img, a.get_data_info(idx)['img'])
        np.testing.assert_array_equal(
            a.get_object_mask(idx), b.get_object_mask(idx))
    np.testing.assert_array_equal(a.get_gt_labels(), b.get_gt_labels())


def test_global_random_state_neither_used_nor_changed():
    ds = _make(num_samples=8, seed=1)
    np.random.seed(123)
    before = np.random.get_state()
    first = ds.get_image(5)
    after = np.random.get_state()
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]
    np.random.seed(999)
    np.testing.assert_array_equal(first, ds.get_image(5))


def test_identical_in_another_process():
    ds = _make(num_samples=6, seed=7, split='test')
    local = np.stack([ds.get_image(i) for i in range(6)])
    script = textwrap.dedent("""
        import sys
        import numpy as np
        np.random.seed(4321)
        import famt_mm.datasets
        from mmpretrain.registry import DATASETS
        ds = DATASETS.build(dict(type='SyntheticObjects', num_samples=6,
                                 seed=7, split='test'))
        imgs = np.stack([ds.get_image(i) for i in range(6)])
        sys.stdout.buffer.write(imgs.tobytes())
    """)
    env = dict(os.environ, PYTHONHASHSEED='17')
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    out = subprocess.run([sys.executable, '-c', script], env=env,
                         capture_output=True, check=True, timeout=120)
    remote = np.frombuffer(out.stdout, dtype=np.uint8).reshape(local.shape)
    np.testing.assert_array_equal(local, remote)


def test_dataloader_workers_match_main_process():
    ds = _make(num_samples=8, seed=2)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=list)
    items = [item for batch in loader for item in batch]
    assert [it['sample_idx'] for it in items] == list(range(8))
    for it in items:
        np.testing.assert_array_equal(it['img'],
                                      ds.get_image(it['sample_idx']))


def test_seeds_and_splits_differ():
    base = _make(num_samples=16, seed=0, split='train')
    other_seed = _make(num_samples=16, seed=1, split='train')
    other_split = _make(num_samples=16, seed=0, split='test')
    for other in (other_seed, other_split):
        assert not np.array_equal(base.get_gt_labels(), other.get_gt_labels())
        for idx in range(16):
            assert not np.array_equal(base.get_image(idx),
                                      other.get_image(idx))
    # Different indices of one stream differ too.
    assert not np.array_equal(base.get_image(0), base.get_image(1))


def test_prefix_independent_of_length():
    short = _make(num_samples=20, seed=5)
    long = _make(num_samples=300, seed=5)
    np.testing.assert_array_equal(short.get_gt_labels(),
                                  long.get_gt_labels()[:20])
    for idx in (0, 9, 19):
        np.testing.assert_array_equal(short.get_image(idx),
                                      long.get_image(idx))


@pytest.mark.parametrize('img_size', [64, 40])
def test_item_shapes_and_types(img_size):
    ds = _make(num_samples=10, img_size=img_size, split='test')
    assert len(ds) == 10
    info = ds.get_data_info(3)
    assert info['sample_idx'] == 3
    assert info['img_path'] == 'synthetic://test/3'
    assert isinstance(info['gt_label'], int)
    img = info['img']
    assert img.dtype == np.uint8 and img.shape == (img_size, img_size, 3)
    assert img.flags['C_CONTIGUOUS']
    assert tuple(info['img_shape']) == (img_size, img_size)
    assert tuple(info['ori_shape']) == (img_size, img_size)
    mask = ds.get_object_mask(3)
    assert mask.dtype == np.bool_ and mask.shape == (img_size, img_size)
    img2, mask2, label = ds.get_sample(3)
    np.testing.assert_array_equal(img2, img)
    np.testing.assert_array_equal(mask2, mask)
    assert label == info['gt_label']
    # Without a pipeline __getitem__ returns the same record.
    np.testing.assert_array_equal(ds[3]['img'], img)


def test_labels_balanced_and_in_range(full_train):
    labels = full_train.get_gt_labels()
    assert labels.shape == (2000, )
    assert labels.min() >= 0 and labels.max() < 8
    np.testing.assert_array_equal(np.bincount(labels, minlength=8),
                                  np.full(8, 250))
    # Not a trivial i % num_classes cycle.
    assert not np.array_equal(labels, np.arange(2000) % 8)
    assert full_train.get_cat_ids(7) == [int(labels[7])]

    small = _make(num_samples=101, num_classes=5, seed=9)
    counts = np.bincount(small.get_gt_labels(), minlength=5)
    assert counts.sum() == 101 and len(counts) == 5
    assert counts.max() - counts.min() <= 1


def test_metainfo_classes():
    ds = _make(num_samples=8)
    assert ds.CLASSES == SHAPE_CLASSES
    assert ds.metainfo['classes'] == SHAPE_CLASSES
    assert len(set(SHAPE_CLASSES)) == 8
    assert ds.class_to_idx['disc'] == 0
    three = _make(num_samples=8, num_classes=3)
    assert three.CLASSES == SHAPE_CLASSES[:3]
    assert three.get_gt_labels().max() < 3


def test_masks_nonempty_inside_image_and_in_scale_range(full_train):
    size = full_train.img_size
    lo, hi = OBJECT_SCALE_RANGE
    areas = []
    for idx in range(len(full_train)):
        mask = full_train.get_object_mask(idx)
        assert mask.any(), idx
        # Fully inside: never touches the border.
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any()
                    or mask[:, -1].any()), idx
        ys, xs = np.nonzero(mask)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        assert 0.6 * lo * size <= extent <= 1.2 * hi * size, (idx, extent)
        areas.append(mask.mean())
    areas = np.array(areas)
    assert 0.003 < areas.min() and areas.max() < 0.25
    # Scale really varies across the dataset.
    assert areas.max() > 4 * areas.min()


def test_mask_matches_object_colour(full_train):
    dists = []
    for idx in range(200):
        img, mask, _ = full_train.get_sample(idx)
        img = img.astype(np.float64)
        band = _band(mask)
        dists.append(np.linalg.norm(img[mask].mean(0) - img[band].mean(0)))
    dists = np.array(dists)
    assert dists.min() > 15
    assert np.median(dists) > 60


def test_mask_misaligned_gives_less_contrast(full_train):
    """The mask sits on the object: shifting it lowers the contrast."""
    better = 0
    for idx in range(50):
        img, mask, _ = full_train.get_sample(idx)
        img = img.astype(np.float64)
        aligned = np.linalg.norm(img[mask].mean(0) - img[_band(mask)].mean(0))
        shifted = np.roll(mask, (mask.shape[0] // 2, mask.shape[1] // 2),
                          axis=(0, 1))
        off = np.linalg.norm(img[shifted].mean(0) -
                             img[_band(shifted)].mean(0))
        better += aligned > off
    assert better >= 45


def test_images_are_textured_not_flat(full_train):
    for idx in range(20):
        img, mask, _ = full_train.get_sample(idx)
        bg = img[~mask].astype(np.float64)
        fg = img[mask].astype(np.float64)
        # Background varies well beyond sensor noise; object is not flat.
        assert bg.std(axis=0).max() > 6, idx
        assert fg.std(axis=0).max() > 3, idx


@pytest.mark.parametrize('grid', [8, (4, 4), (7, 5), (1, 1), (3, 64)])
def test_patch_object_fraction(full_train, grid):
    for idx in (0, 3, 11):
        mask = full_train.get_object_mask(idx)
        frac = full_train.patch_object_fraction(idx, grid)
        hw = (grid, grid) if isinstance(grid, int) else grid
        assert frac.shape == hw
        assert frac.min() >= 0 and frac.max() <= 1 + 1e-12
        np.testing.assert_allclose(frac.mean(), mask.mean(), atol=1e-12)
        if mask.shape[0] % hw[0] == 0 and mask.shape[1] % hw[1] == 0:
            expect = mask.reshape(hw[0], mask.shape[0] // hw[0], hw[1],
                                  mask.shape[1] // hw[1]).mean(axis=(1, 3))
            np.testing.assert_allclose(frac, expect, atol=1e-12)


def test_mask_cell_fraction_partial_pixels():
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True
    frac = mask_cell_fraction(mask, (2, 2))
    # Cell (0,0) covers pixels [0,1.5)^2: pixel (0,0) fully -> 1 / 2.25.
    np.testing.assert_allclose(frac, [[1 / 2.25, 0], [0, 0]])
    with pytest.raises(ValueError):
        mask_cell_fraction(mask, (0, 2))


def test_builds_from_registry_and_runs_mmpretrain_pipeline():
    from mmpretrain.registry import DATASETS
    from mmpretrain.structures import DataSample
    ds = DATASETS.build(
        dict(type='SyntheticObjects', num_samples=12, seed=4,
             pipeline=MAE_PIPELINE))
    assert isinstance(ds, SyntheticObjects)
    for idx in (0, 5):
        out = ds[idx]
        inputs = out['inputs']
        assert isinstance(inputs, torch.Tensor)
        assert inputs.shape == (3, 64, 64) and inputs.dtype == torch.uint8
        sample = out['data_samples']
        assert isinstance(sample, DataSample)
        assert sample.sample_idx == idx
        assert sample.img_path == f'synthetic://train/{idx}'
        assert int(sample.gt_label) == ds.get_gt_labels()[idx]
        assert tuple(sample.ori_shape) == (64, 64)


def test_pipeline_resize_to_other_size():
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(
        dict(type='SyntheticObjects', num_samples=4, img_size=48,
             pipeline=[dict(type='Resize', scale=32),
                       dict(type='PackInputs')]))
    assert ds[1]['inputs'].shape == (3, 32, 32)


def test_base_config_builds_dataset_and_batches():
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(
        os.path.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                     'synthetic_objects_mae.py'))
    assert cfg.dataset_type == 'SyntheticObjects'
    assert cfg.data_preprocessor['type'] == 'SelfSupDataPreprocessor'
    assert not any(t['type'] == 'LoadImageFromFile'
                   for t in cfg.train_pipeline)
    ds_cfg = cfg.train_dataloader.dataset.copy()
    assert ds_cfg.num_samples == 2000 and ds_cfg.img_size == 64
    ds_cfg.num_samples = 8
    ds = DATASETS.build(ds_cfg)
    batch = default_collate([ds[i] for i in range(4)])
    assert len(batch['inputs']) == 4
    assert all(x.shape == (3, 64, 64) for x in batch['inputs'])


def test_indices_lazy_init_and_kwargs_pass_through():
    full = _make(num_samples=10, seed=6)
    sub = SyntheticObjects(num_samples=10, seed=6, indices=[5, 2],
                           lazy_init=True, test_mode=True)
    assert sub.test_mode
    assert not sub._fully_initialized
    assert len(sub) == 2
    info = sub.get_data_info(0)
    assert info['img_path'] == 'synthetic://train/5'
    np.testing.assert_array_equal(info['img'], full.get_image(5))
    np.testing.assert_array_equal(sub.get_object_mask(1),
                                  full.get_object_mask(2))
    np.testing.assert_array_equal(sub.get_gt_labels(),
                                  full.get_gt_labels()[[5, 2]])


@pytest.mark.parametrize('kwargs', [
    dict(split='holdout'),
    dict(num_classes=9),
    dict(num_classes=0),
    dict(num_samples=0),
    dict(seed=-1),
    dict(img_size=8),
    dict(num_classes=3, metainfo=dict(classes=('a', 'b'))),
    dict(object_scale=(0.0, 0.5)),
    dict(object_scale=(0.6, 0.5)),
    dict(object_scale=(0.5, 1.2)),
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        SyntheticObjects(**kwargs)


def test_probe_preset_large_flat_objects_with_the_same_geometry():
    """object_scale / texture=False (the CPU probe experiment): big flat objects, same masks."""
    kw = dict(num_samples=24, img_size=32, num_classes=4, object_scale=(0.5, 0.9))
    flat, textured = SyntheticObjects(texture=False, **kw), SyntheticObjects(**kw)
    bg_std_flat, bg_std_textured = [], []
    for idx in range(len(flat)):
        img, mask, label = flat.get_sample(idx)
        assert label == textured.get_gt_labels()[idx]
        np.testing.assert_array_equal(mask, textured.get_object_mask(idx))
        ys, xs = np.nonzero(mask)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 >= 0.6 * 0.5 * 32, idx
        # flat background: one colour plus sensor noise (sigma <= 7)
        assert img[~mask].astype(np.float64).std(axis=0).max() < 10, idx
        bg_std_flat.append(img[~mask].astype(np.float64).std(axis=0).mean())
        bg_std_textured.append(
            textured.get_image(idx)[~mask].astype(np.float64).std(axis=0).mean())
    assert np.mean(bg_std_textured) > 2 * np.mean(bg_std_flat)
    areas = np.array([flat.get_object_mask(i).mean() for i in range(len(flat))])
    assert areas.mean() > 0.2  # default scale: objects below 0.25 of the image, most far less


def test_cache_changes_speed_not_images():
    kw = dict(num_samples=6, img_size=32, object_scale=(0.5, 0.9))
    cached, plain = SyntheticObjects(cache=True, **kw), SyntheticObjects(**kw)
    for idx in range(len(cached)):
        first = cached[idx]['img']
        first[:] = 0  # a pipeline writing into its input must not alter the cache
        np.testing.assert_array_equal(cached[idx]['img'], plain[idx]['img'])
        np.testing.assert_array_equal(cached.get_object_mask(idx), plain.get_object_mask(idx))
    assert len(cached._cache) == len(cached) and not plain._cache
