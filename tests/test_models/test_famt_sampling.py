"""Tests of famt_mm.models.famt_sampling: set sizes, crop mapping, Plackett-Luce sampler."""
import itertools
import math

import numpy as np
import pytest
import torch

from famt_mm.models.famt_sampling import (map_weights_to_crop, plackett_luce_split,
                                          split_counts)

# ---------------------------------------------------------------------------------------------
# split_counts


def test_split_counts_default_recipe():
    assert split_counts(196, 0.45, 0.40) == (88, 78, 30)


@pytest.mark.parametrize('num, mask, throw, expected', [
    (196, 0.75, 0.0, (147, 0, 49)),  # plain MAE
    (49, 0.45, 0.40, (22, 19, 8)),
    (64, 0.5, 0.25, (32, 16, 16)),
    (49, 0.75, 0.0, (36, 0, 13)),  # int() floors 36.75, it does not round
])
def test_split_counts_other(num, mask, throw, expected):
    assert split_counts(num, mask, throw) == expected
    assert sum(expected) == num


@pytest.mark.parametrize('mask, throw, word', [
    (1.0, 0.0, 'mask_ratio'),
    (-0.1, 0.2, 'mask_ratio'),
    (0.5, -0.01, 'throw_ratio'),
    (0.5, 1.0, 'throw_ratio'),
    (0.6, 0.4, 'mask_ratio + throw_ratio'),
    (0.0, 0.5, 'mask_ratio=0.0'),  # nothing masked: no loss
    (0.001, 0.5, 'mask_ratio=0.001'),  # int(196 * 0.001) == 0
])
def test_split_counts_bad_ratios(mask, throw, word):
    # (n_visible == 0 is guarded too, but mask + throw < 1 already rules it out for any
    # practical L: int(L * (1 - 2^-53)) < L)
    with pytest.raises(ValueError, match=word.replace('+', r'\+')):
        split_counts(196, mask, throw)


def test_split_counts_bad_num_patches():
    with pytest.raises(ValueError, match='num_patches'):
        split_counts(0, 0.5, 0.1)


# ---------------------------------------------------------------------------------------------
# map_weights_to_crop


def _hot(shape, r, c, batch=1):
    m = torch.zeros(batch, *shape)
    m[:, r, c] = 1.0
    return m


def _box(x1, y1, x2, y2, batch=1):
    return torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32).repeat(batch, 1)


def test_crop_identity_full_box():
    torch.manual_seed(0)
    for h0, w0 in ((14, 14), (8, 12)):
        maps = torch.rand(3, h0, w0)
        out = map_weights_to_crop(maps, _box(0, 0, 1, 1, 3), (h0, w0))
        assert out.shape == (3, h0, w0) and out.dtype == torch.float32
        torch.testing.assert_close(out, maps, rtol=0, atol=1e-6)


def test_crop_full_box_downsample_is_avg_pool():
    torch.manual_seed(0)
    maps = torch.rand(2, 14, 14)
    out = map_weights_to_crop(maps, _box(0, 0, 1, 1, 2), (7, 7))
    expected = torch.nn.functional.avg_pool2d(maps[:, None], 2)[:, 0]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.mean(dim=(1, 2)), maps.mean(dim=(1, 2)))


def test_crop_hot_cell_lands_where_the_crop_puts_it():
    # 14 x 14 map, crop x in [2/14, 9/14), y in [4/14, 11/14): 7 x 7 cells onto a 7 x 7 grid,
    # so map cell (r, c) goes to crop cell (r - 4, c - 2).
    maps = _hot((14, 14), 6, 5)
    box = _box(2 / 14, 4 / 14, 9 / 14, 11 / 14)
    out = map_weights_to_crop(maps, box, (7, 7))
    assert out[0, 2, 3] == pytest.approx(1.0, abs=1e-6)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)
    # the buggy public code (top-left cells whatever the crop) would put it at (6, 5) or miss
    assert out[0, :2].abs().max() < 1e-6

    # horizontal flip mirrors the column: 6 - 3 = 3 -> choose a hot cell off the centre column
    maps = _hot((14, 14), 6, 3)  # crop cell (2, 1)
    flipped = map_weights_to_crop(maps, box, (7, 7), flip=torch.tensor([True]))
    assert flipped[0, 2, 5] == pytest.approx(1.0, abs=1e-6)
    not_flipped = map_weights_to_crop(maps, box, (7, 7), flip=torch.tensor([False]))
    assert not_flipped[0, 2, 1] == pytest.approx(1.0, abs=1e-6)

    vflip = map_weights_to_crop(maps, box, (7, 7), flip=torch.tensor([True]),
                                flip_direction=torch.tensor([1]))
    assert vflip[0, 4, 1] == pytest.approx(1.0, abs=1e-6)
    dflip = map_weights_to_crop(maps, box, (7, 7), flip=torch.tensor([True]),
                                flip_direction=torch.tensor([2]))
    assert dflip[0, 4, 5] == pytest.approx(1.0, abs=1e-6)


def test_crop_hot_cell_upsampled_crop():
    # a 7 x 7-cell crop resampled onto a 14 x 14 grid: one map cell covers 2 x 2 crop cells
    maps = _hot((14, 14), 6, 5)
    out = map_weights_to_crop(maps, _box(2 / 14, 4 / 14, 9 / 14, 11 / 14), (14, 14))
    hot = (out > 0.5).nonzero()[:, 1:].tolist()
    assert hot == [[4, 6], [4, 7], [5, 6], [5, 7]]


def test_crop_hot_cell_non_square_map_and_grid():
    # 8 x 12 map (h0 x w0); box x in [3/12, 9/12), y in [2/8, 6/8) -> 4 rows x 6 columns of
    # cells onto a 2 x 3 grid: crop cell (i, j) averages map rows 2+2i.. and columns 3+2j..
    maps = _hot((8, 12), 5, 6)
    out = map_weights_to_crop(maps, _box(3 / 12, 2 / 8, 9 / 12, 6 / 8), (2, 3))
    assert out.shape == (1, 2, 3)
    expected = torch.zeros(1, 2, 3)
    expected[0, 1, 1] = 0.25  # row (5 - 2) // 2 = 1, column (6 - 3) // 2 = 1, 1 of 4 cells
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    flipped = map_weights_to_crop(maps, _box(3 / 12, 2 / 8, 9 / 12, 6 / 8), (2, 3),
                                  flip=torch.tensor([True]))
    torch.testing.assert_close(flipped, expected.flip(-1), rtol=0, atol=1e-6)


def test_crop_batch_mixes_boxes_and_flips():
    # the same map under different boxes / flips in one call: each row matches its own call
    maps = _hot((14, 14), 6, 3, batch=3)
    boxes = torch.tensor([[2 / 14, 4 / 14, 9 / 14, 11 / 14], [0, 0, 1, 1], [0, 0, 0.5, 0.5]])
    flip = torch.tensor([True, False, True])
    direction = torch.tensor([0, 2, 1])
    out = map_weights_to_crop(maps, boxes, (7, 7), flip=flip, flip_direction=direction)
    for b in range(3):
        single = map_weights_to_crop(maps[b:b + 1], boxes[b:b + 1], (7, 7), flip=flip[b:b + 1],
                                     flip_direction=direction[b:b + 1])
        torch.testing.assert_close(out[b:b + 1], single)
    assert out[0, 2, 5] == pytest.approx(1.0, abs=1e-6)


def test_crop_box_past_the_image_keeps_the_grid():
    # box starts 1/14 left of the image: crop column j covers map column j - 1; column 0 lies
    # outside the image and copies the nearest cell (edge), it does not shift the grid
    torch.manual_seed(0)
    maps = torch.rand(1, 14, 14)
    out = map_weights_to_crop(maps, _box(-1 / 14, 0, 13 / 14, 1), (14, 14))
    torch.testing.assert_close(out[0, :, 1:], maps[0, :, :13], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[0, :, 0], maps[0, :, 0], rtol=0, atol=1e-6)
    # a bin half outside averages only its inside part
    out = map_weights_to_crop(maps, _box(-0.5 / 14, 0, 13.5 / 14, 1), (14, 14))
    torch.testing.assert_close(out[0, :, 0], maps[0, :, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[0, :, 1], (maps[0, :, 0] + maps[0, :, 1]) / 2, rtol=0,
                               atol=1e-6)


def test_crop_zero_size_box_copies_the_cell_under_it():
    # a degenerate box (zero width) has no area to average: it point-samples the cell under it
    torch.manual_seed(0)
    maps = torch.rand(1, 14, 14)
    out = map_weights_to_crop(maps, _box(0.5 / 14 + 5 / 14, 0, 0.5 / 14 + 5 / 14, 1), (14, 3))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], maps[0, :, 5:6].expand(14, 3), rtol=0, atol=1e-6)


def _supersampled_reference(m, box, out_hw, res):
    """Exact area average by a piecewise-constant upsampling to res x res (numpy)."""
    h0, w0 = m.shape
    fine = np.repeat(np.repeat(m, res // h0, axis=0), res // w0, axis=1)
    x1, y1, x2, y2 = (int(round(v * res)) for v in box)
    h, w = out_hw
    crop = fine[y1:y2, x1:x2]
    return crop.reshape(h, (y2 - y1) // h, w, (x2 - x1) // w).mean(axis=(1, 3))


def test_crop_matches_supersampled_area_average():
    # boxes on a 1/840 lattice whose sides divide into the output grid: the 840 x 840 repeat of
    # the map is then exact, so its block means are the true area averages
    rng = np.random.default_rng(0)
    res = 840
    for h0, w0, out_hw in ((14, 14, (7, 7)), (14, 14, (5, 6)), (8, 12, (4, 3))):
        maps, boxes, refs = [], [], []
        for _ in range(4):
            m = rng.random((h0, w0))
            bh = out_hw[0] * rng.integers(30, res // out_hw[0] // 2 + 30)
            bw = out_hw[1] * rng.integers(30, res // out_hw[1] // 2 + 30)
            y1 = rng.integers(0, res - bh + 1)
            x1 = rng.integers(0, res - bw + 1)
            box = (x1 / res, y1 / res, (x1 + bw) / res, (y1 + bh) / res)
            maps.append(m)
            boxes.append(box)
            refs.append(_supersampled_reference(m, box, out_hw, res))
        out = map_weights_to_crop(torch.tensor(np.stack(maps)), torch.tensor(boxes), out_hw)
        assert out.dtype == torch.float64
        np.testing.assert_allclose(out.numpy(), np.stack(refs), rtol=0, atol=1e-9)


def test_crop_flip_direction_needs_flip():
    with pytest.raises(ValueError, match='flip'):
        map_weights_to_crop(torch.ones(1, 4, 4), _box(0, 0, 1, 1), (4, 4),
                            flip_direction=torch.tensor([1]))


# ---------------------------------------------------------------------------------------------
# plackett_luce_split


def _exact_pl_stats(w, ks):
    """Exact P(j in first k) and P(i before j) of Plackett-Luce by enumerating permutations."""
    w = np.asarray(w, dtype=np.float64)
    length = len(w)
    top = {k: np.zeros(length) for k in ks}
    before = np.zeros((length, length))
    for perm in itertools.permutations(range(length)):
        p, rest = 1.0, w.sum()
        for j in perm:
            p *= w[j] / rest
            rest -= w[j]
        for k in ks:
            top[k][list(perm[:k])] += p
        pos = np.argsort(perm)
        before += p * (pos[:, None] < pos[None, :])
    return top, before


def _empirical_stats(orders, ks):
    """Same statistics from N x L orders (tensor of permutations)."""
    n, length = orders.shape
    pos = torch.argsort(orders, dim=1)  # pos[n, j]: position of patch j in draw n
    top = {k: (pos < k).double().mean(0).numpy() for k in ks}
    before = (pos[:, :, None] < pos[:, None, :]).double().mean(0).numpy()
    return top, before


def _assert_close_to(p_hat, p, n, n_se=5.0):
    se = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
    assert np.all(np.abs(p_hat - p) <= n_se * se + 1e-12), (p_hat, p, se)


def test_sampler_matches_multinomial_and_exact_plackett_luce():
    w = torch.tensor([1.0, 2.0, 3.0, 0.5, 6.0, 10.0])
    length, n, ks = len(w), 40000, (1, 2, 3)
    gen = torch.Generator().manual_seed(0)
    masked, thrown, visible = plackett_luce_split(w.expand(n, length) * 3.7, 1, 2, generator=gen)
    ours = torch.cat([masked, thrown, visible], dim=1)
    ref = torch.multinomial(w.expand(n, length), length, replacement=False,
                            generator=torch.Generator().manual_seed(1))
    top, before = _exact_pl_stats(w.numpy(), ks)
    for orders in (ours, ref):
        top_hat, before_hat = _empirical_stats(orders, ks)
        for k in ks:
            _assert_close_to(top_hat[k], top[k], n)
        _assert_close_to(before_hat, before, n)
    # the two samplers against each other, as the spec states it (difference of two means)
    (top_a, before_a), (top_b, before_b) = _empirical_stats(ours, ks), _empirical_stats(ref, ks)
    for k in ks:
        _assert_close_to(top_a[k], top_b[k], n / 2)
    _assert_close_to(before_a, before_b, n / 2)


def test_sampler_rejects_ascending_order():
    # guard that the statistics test has power: the highest weight must be first most often
    w = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 20.0])
    masked, _, _ = plackett_luce_split(w.expand(4000, 6), 1, 0,
                                       generator=torch.Generator().manual_seed(0))
    assert (masked[:, 0] == 5).double().mean() == pytest.approx(0.8, abs=0.03)


def test_sampler_sets_disjoint_and_covering():
    torch.manual_seed(0)
    b, length = 8, 196
    w = torch.rand(b, length) + 1e-3
    n_mask, n_throw, n_visible = split_counts(length, 0.45, 0.40)
    masked, thrown, visible = plackett_luce_split(w, n_mask, n_throw)
    assert masked.shape == (b, n_mask) and thrown.shape == (b, n_throw)
    assert visible.shape == (b, n_visible)
    for t in (masked, thrown, visible):
        assert t.dtype == torch.int64
    all_ids = torch.cat([masked, thrown, visible], dim=1).sort(dim=1).values
    assert torch.equal(all_ids, torch.arange(length).expand(b, length))


def test_sampler_uniform_weights_is_random_masking():
    length, n, n_mask = 16, 20000, 4
    gen = torch.Generator().manual_seed(0)
    masked, thrown, visible = plackett_luce_split(torch.ones(n, length), n_mask, 0,
                                                  generator=gen)
    assert thrown.shape == (n, 0) and visible.shape == (n, length - n_mask)
    freq = torch.zeros(length).index_add_(0, masked.reshape(-1), torch.ones(n * n_mask)) / n
    p = n_mask / length
    assert torch.all((freq - p).abs() <= 5 * math.sqrt(p * (1 - p) / n))


def test_sampler_generator_reproducible():
    w = torch.rand(4, 49) + 0.1
    a = plackett_luce_split(w, 20, 10, generator=torch.Generator().manual_seed(3))
    b = plackett_luce_split(w, 20, 10, generator=torch.Generator().manual_seed(3))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match='n_mask'):
        plackett_luce_split(w, 40, 10)


def test_sampler_guards_log_of_zero_uniform(monkeypatch):
    # torch.rand may return exactly 0; the key must stay finite and keep the weight order
    monkeypatch.setattr(torch, 'rand', lambda *a, **k: torch.zeros(*a[0]))
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    masked, thrown, visible = plackett_luce_split(w, 2, 1)
    assert masked.tolist() == [[4, 3]] and thrown.tolist() == [[2]]
    assert visible.tolist() == [[1, 0]]
