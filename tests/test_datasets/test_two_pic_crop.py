"""FAMTRandomResizedCropAndInterpolationWithTwoPic (BEiT v1 / v2, CAE): mmpretrain's crop, same
random calls and output, and a recorded box that reproduces both views (the recipes flip first)."""
import mmcv
import numpy as np
import pytest
import torch
from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCropAndInterpolationWithTwoPic
from mmpretrain.registry import TRANSFORMS

import famt_mm  # noqa: F401
from famt_mm.models.famt_sampling import map_weights_to_crop

BEIT = dict(size=24, second_size=12, interpolation='bicubic', second_interpolation='lanczos',
            scale=(0.08, 1.0))  # BEiT v1 / CAE's arguments at a small size


def famt_crop(**kw):
    return TRANSFORMS.build(dict(type='FAMTRandomResizedCropAndInterpolationWithTwoPic', **kw))


def picture(h=57, w=83, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixel_box(box, h, w):
    """famt_crop (normalised) -> (left, top, right, bottom) pixels; exact, not rounded off."""
    x1, y1, x2, y2 = np.array(box) * [w, h, w, h]
    out = np.rint([x1, y1, x2, y2]).astype(int)
    np.testing.assert_allclose(out, [x1, y1, x2, y2], atol=1e-9)
    return out


def views_of(out):
    return out['img'] if isinstance(out['img'], list) else [out['img']]


@pytest.mark.parametrize('second_size', [12, None])
@pytest.mark.parametrize('direction', [None, 'horizontal', 'vertical', 'diagonal'])
@pytest.mark.parametrize('seed', range(3))
def test_recorded_box_reproduces_both_views(seed, direction, second_size):
    img = picture(seed=seed)
    crop = famt_crop(**dict(BEIT, second_size=second_size))
    np.random.seed(seed)
    results = dict(img=img.copy())
    if direction is not None:  # BEiT's and CAE's recipes flip before the crop
        results = RandomFlip(prob=1.0, direction=direction)(results)
    out = crop(results)
    left, top, right, bottom = pixel_box(out['famt_crop'], *img.shape[:2])
    assert 0 <= left < right <= img.shape[1] and 0 <= top < bottom <= img.shape[0]
    cut = img[top:bottom, left:right]  # the box is in the image before the flip ...
    expected = [mmcv.imresize(cut, (24, 24), interpolation='bicubic')]
    if second_size is not None:
        expected.append(mmcv.imresize(cut, (12, 12), interpolation='lanczos'))
    if direction is not None:  # ... and the packed flip turns it into what the model sees
        assert out['flip'] and out['flip_direction'] == direction
        expected = [mmcv.imflip(e, direction=direction) for e in expected]
    got = views_of(out)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize('kw', [
    BEIT,
    dict(size=224, second_size=224, interpolation='bicubic', second_interpolation='bicubic',
         scale=(0.2, 1.0)),  # BEiT v2
    dict(size=(20, 16), second_size=None, interpolation='random'),  # one view, drawn interp
    dict(size=16, scale=(1.0, 1.0), ratio=(2.0, 3.0)),  # never fits: the central fallback
])
@pytest.mark.parametrize('seed', range(4))
def test_same_random_state_gives_mmpretrains_crop_and_output(seed, kw):
    img = picture(seed=seed)
    plain = RandomResizedCropAndInterpolationWithTwoPic(**kw)
    np.random.seed(seed)
    expected = plain(dict(img=img.copy()))
    state_after_plain = np.random.get_state()[1].copy()
    np.random.seed(seed)
    top, left, h, w = plain.get_params(img, plain.scale, plain.ratio)
    np.random.seed(seed)
    out = famt_crop(**kw)(dict(img=img.copy()))
    np.testing.assert_array_equal(np.random.get_state()[1], state_after_plain)  # same draws
    H, W = img.shape[:2]
    assert out['famt_crop'] == (left / W, top / H, (left + w) / W, (top + h) / H)
    assert type(out['img']) is type(expected['img'])
    for g, e in zip(views_of(out), views_of(expected)):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize('direction', ['horizontal', 'vertical'])
@pytest.mark.parametrize('seed', range(3))
def test_weight_map_mapped_with_the_box_and_flip_lands_where_the_view_shows_it(seed, direction):
    """Flip, then crop (the recipe's order): the generator's mapping puts a hot cell of the
    whole-image map on the patches of the view that show it."""
    cells = np.arange(64, dtype=np.float32).reshape(8, 8)
    img = np.repeat(cells[(np.arange(96) // 12)[:, None], (np.arange(128) // 16)[None]][..., None],
                    3, axis=2)
    np.random.seed(seed)
    results = RandomFlip(prob=1.0, direction=direction)(dict(img=img.copy()))
    out = famt_crop(size=64, second_size=32, interpolation='nearest',
                    second_interpolation='nearest', scale=(0.2, 0.6))(results)
    seen = out['img'][0][..., 0]  # 64 x 64, nearest: the cell ids survive
    present = np.unique(seen).astype(int)
    hot = int(present[len(present) // 2])
    weights = torch.full((1, 8, 8), 1e-3)
    weights.view(-1)[hot] = 1.0
    mapped = map_weights_to_crop(weights, torch.tensor([out['famt_crop']]), (8, 8),
                                 flip=torch.tensor([out['flip']]),
                                 flip_direction=torch.tensor([{'horizontal': 0,
                                                               'vertical': 1}[direction]]))[0]
    shows_hot = (seen.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(8, 8, 64) == hot).mean(-1)
    assert np.corrcoef(shows_hot.ravel(), mapped.numpy().ravel())[0, 1] > 0.95
