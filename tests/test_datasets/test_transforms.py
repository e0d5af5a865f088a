"""FAMTRandomResizedCrop records the box that the image was really cut with."""
import numpy as np
import pytest
import torch
from mmcv.transforms import RandomFlip
from mmpretrain.registry import TRANSFORMS

import famt_mm  # noqa: F401
from famt_mm.models.famt_sampling import map_weights_to_crop


def grid_image(h0=8, w0=8, size=(96, 128)):
    """An image whose pixels hold their cell's id of an h0 x w0 grid, and that grid."""
    H, W = size
    cells = np.arange(h0 * w0, dtype=np.float32).reshape(h0, w0)
    rows = (np.arange(H) * h0 // H)[:, None]
    cols = (np.arange(W) * w0 // W)[None, :]
    img = cells[rows, cols]
    return np.repeat(img[..., None], 3, axis=2), cells


@pytest.mark.parametrize('seed', range(5))
def test_recorded_box_maps_the_full_image_map_onto_the_crop(seed):
    np.random.seed(seed)
    img, cells = grid_image()
    crop = TRANSFORMS.build(dict(type='FAMTRandomResizedCrop', scale=64,
                                 crop_ratio_range=(0.2, 1.0), interpolation='nearest'))
    out = crop(dict(img=img.copy()))
    x1, y1, x2, y2 = out['famt_crop']
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
    # A hot cell in the full-image map lands on the crop patches that show it.
    seen = out['img'][..., 0]  # 64 x 64 crop, nearest-resized: cell ids survive
    present = np.unique(seen).astype(int)
    hot = int(present[len(present) // 2])
    weights = torch.full((1, 8, 8), 1e-3)
    weights.view(-1)[hot] = 1.0
    mapped = map_weights_to_crop(weights, torch.tensor([out['famt_crop']]), (8, 8))[0]
    shows_hot = (seen.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(8, 8, 64) == hot).mean(-1)
    # Where the crop shows the hot cell the mapped weight is high, elsewhere ~0.
    assert np.corrcoef(shows_hot.ravel(), mapped.numpy().ravel())[0, 1] > 0.95


def test_flip_after_the_crop_is_recorded_for_the_mapping():
    img, _ = grid_image()
    crop = TRANSFORMS.build(dict(type='FAMTRandomResizedCrop', scale=64, crop_ratio_range=(1.0, 1.0),
                                 aspect_ratio_range=(4. / 3., 4. / 3.), interpolation='nearest'))
    out = RandomFlip(prob=1.0, direction='horizontal')(crop(dict(img=img.copy())))
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    np.testing.assert_allclose(out['famt_crop'], (0, 0, 1, 1))
    weights = torch.zeros(1, 8, 8)
    weights[0, 0, 0] = 1.0  # top-left of the image ...
    mapped = map_weights_to_crop(weights, torch.tensor([out['famt_crop']]), (8, 8),
                                 flip=torch.tensor([True]))[0]
    assert mapped.argmax().item() == 7  # ... is top-right of the flipped crop
    assert out['img'][0, -1, 0] == 0  # and the flipped image agrees
