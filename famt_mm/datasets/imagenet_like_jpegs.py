"""A folder of generated JPEGs with ImageNet-1K's file statistics, for data-path benchmarks.

ImageNet-1K's training JPEGs are about 400 x 350 px on average (most 500 x 375 or 375 x 500,
a tail up to a few thousand px), saved at quality ~90, about 110 KB each. Decoding and
resizing cost depends on the pixel count and on how much detail the entropy coder must
read, so the images here have both: smooth colour fields (sky, walls) plus textured regions
and edges, tuned so that the mean file size is close to ImageNet's.

The layout is mmpretrain's ``CustomDataset`` one (``root/class_XX/NNNNNN.JPEG``), so the folder
can be the ``data_root`` of a training config as it is.
"""
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image

#: (long side, short side, share): ImageNet-1K's common training sizes, then a tail.
COMMON_SIZES = ((500, 375, 0.55), (500, 333, 0.15), (500, 500, 0.05))
TAIL_LONG_SIDES = (250, 800)  # the rest: long side uniform in this range, aspect 4:3 to 16:9


def imagenet_like_size(rng: np.random.Generator) -> Tuple[int, int]:
    """One (width, height) drawn from ImageNet-1K-like sizes (a quarter in portrait)."""
    pick = rng.random()
    for long_side, short_side, share in COMMON_SIZES:
        if pick < share:
            break
        pick -= share
    else:
        long_side = int(rng.integers(*TAIL_LONG_SIDES))
        short_side = int(round(long_side / rng.uniform(4 / 3, 16 / 9)))
    return (short_side, long_side) if rng.random() < 0.25 else (long_side, short_side)


def imagenet_like_image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """An (height, width, 3) uint8 RGB picture: blurred colour fields, edges and texture."""
    coarse = rng.uniform(0, 255, size=(max(2, height // 64), max(2, width // 64), 3))
    base = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize(
        (width, height), Image.BICUBIC), dtype=np.float32)
    # a few hard-edged shapes: what makes JPEG's high frequencies expensive in real photos
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.1, 0.4) * min(width, height)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        base[inside] = 0.5 * base[inside] + 0.5 * rng.uniform(0, 255, size=3)
    # texture of mixed grain (foliage, fur, fabric), stronger in some regions than others
    grain = rng.normal(0, 1, size=(height, width, 1)).astype(np.float32)
    fine = np.asarray(Image.fromarray(np.uint8(np.clip(128 + 40 * grain[..., 0], 0, 255)))
                      .resize((width // 2 or 1, height // 2 or 1)).resize((width, height)),
                      dtype=np.float32)[..., None] - 128
    amount = np.asarray(Image.fromarray(rng.uniform(0, 1, size=(4, 4)).astype(np.float32))
                        .resize((width, height), Image.BILINEAR))[..., None]
    base += (0.3 + amount) * (24 * grain + 1.2 * fine)
    return np.clip(base, 0, 255).astype(np.uint8)


def make_imagenet_like_jpegs(root: str, n: int, seed: int = 0, quality: int = 90,
                             classes: int = 10) -> List[str]:
    """Write ``n`` JPEGs into ``root/class_XX/`` and return their paths (sorted).

    Deterministic for a given ``seed``; the files already there are rewritten.
    """
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        width, height = imagenet_like_size(rng)
        folder = osp.join(root, f'class_{i % classes:02d}')
        os.makedirs(folder, exist_ok=True)
        path = osp.join(folder, f'{i:06d}.JPEG')
        Image.fromarray(imagenet_like_image(width, height, rng)).save(path, quality=quality)
        paths.append(path)
    return sorted(paths)


def make_imagenet_like_root(data_root: str, n: int, seed: int = 0) -> str:
    """An ImageNet-layout ``data_root`` for mmpretrain's ``ImageNet(split='train')``:
    ``train/class_XX/*.JPEG`` and ``meta/train.txt`` ("path label" lines; the annotation
    file lets 10 folders stand for ImageNet's 1000 classes). Returns ``data_root``.

    A root already holding the same ``meta/train.txt`` and its files is reused as it is
    (minutes saved for a rehearsal of thousands of images run again on the same root)."""
    meta = osp.join(data_root, 'meta', 'train.txt')
    stamp = osp.join(data_root, 'meta', 'generated.txt')
    recipe = f'make_imagenet_like_root n={n} seed={seed}\n'
    if osp.isfile(stamp) and open(stamp).read() == recipe and osp.isfile(meta):
        rels = [line.split(' ')[0] for line in open(meta).read().splitlines()]
        if len(rels) == n and all(osp.isfile(osp.join(data_root, 'train', r)) for r in rels):
            return data_root
    paths = make_imagenet_like_jpegs(osp.join(data_root, 'train'), n, seed)
    os.makedirs(osp.join(data_root, 'meta'), exist_ok=True)
    with open(meta, 'w') as f:
        for path in paths:
            rel = osp.relpath(path, osp.join(data_root, 'train'))
            f.write(f"{rel} {int(rel.split('/')[0].split('_')[1])}\n")
    with open(stamp, 'w') as f:  # written last: a half-written root is never reused
        f.write(recipe)
    return data_root
