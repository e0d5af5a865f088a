"""A generated ImageNet-style folder of JPEGs, to rehearse and measure the ImageNet data path.

``make_jpeg_folder(root, n, seed)`` writes ``root/train/<class>/<class>_<i>.JPEG`` and
``root/meta/train.txt`` (``<class>/<file> <label>`` per line), the layout mmpretrain's
``ImageNet(data_root=root, split='train')`` reads. Sizes follow ImageNet's common shapes
(mostly 500 x 375 / 375 x 500 / 500 x 333); the content is smooth colour fields with edges and
grain, so files decode and compress like photos (tens of KB, not a few hundred bytes).
"""
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image

#: (width, height) of the generated images and how often each occurs: ImageNet's most common
#: shapes (landscape 4:3 dominates; portraits, 3:2 and squares follow).
IMAGE_SIZES: Tuple[Tuple[Tuple[int, int], float], ...] = (
    ((500, 375), 0.50), ((375, 500), 0.15), ((500, 333), 0.15), ((500, 500), 0.10),
    ((640, 480), 0.10))


def _image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """One photo-like RGB image: a bicubically enlarged coarse colour field, a few hard-edged
    shapes and pixel grain."""
    coarse = rng.integers(0, 256, (rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC),
                     dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(1, 4))):  # objects: discs of another colour
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.1, 0.35) * min(width, height)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[inside] = 0.4 * img[inside] + 0.6 * rng.uniform(0, 255, 3)
    img += rng.normal(0, 12, img.shape)  # grain: what makes a JPEG of a photo tens of KB
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def make_jpeg_folder(root: str, n: int, seed: int = 0, num_classes: int = 10,
                     quality: int = 90) -> List[str]:
    """Write ``n`` JPEGs in ImageNet's layout under ``root``; returns their paths.

    Deterministic for (n, seed, num_classes, quality). A folder already holding the same
    ``meta/train.txt`` is reused as it is (nothing rewritten).

    Args:
        root: the dataset root (``data_root`` of mmpretrain's ``ImageNet``).
        n: number of images (image i belongs to class i % num_classes).
        seed: seed of sizes and contents.
        num_classes: class folders ``n00000000``, ``n00000001``, ...
        quality: JPEG quality.
    """
    rng = np.random.default_rng(seed)
    shapes = [s for s, _ in IMAGE_SIZES]
    probs = np.array([p for _, p in IMAGE_SIZES])
    picks = rng.choice(len(shapes), size=n, p=probs / probs.sum())
    lines, paths = [], []
    for i in range(n):
        label = i % num_classes
        rel = f'n{label:08d}/n{label:08d}_{i}.JPEG'
        lines.append(f'{rel} {label}\n')
        paths.append(osp.join(root, 'train', rel))
    meta = osp.join(root, 'meta', 'train.txt')
    if osp.isfile(meta) and open(meta).read() == ''.join(lines) and all(
            osp.isfile(p) for p in paths):
        return paths
    for c in range(min(n, num_classes)):
        os.makedirs(osp.join(root, 'train', f'n{c:08d}'), exist_ok=True)
    for i, path in enumerate(paths):
        image_rng = np.random.default_rng([seed, i])  # each image on its own: any n agrees
        _image(image_rng, *shapes[picks[i]]).save(path, quality=quality)
    os.makedirs(osp.dirname(meta), exist_ok=True)
    with open(meta, 'w') as f:
        f.write(''.join(lines))
    return paths


__all__ = ['make_jpeg_folder', 'IMAGE_SIZES']
