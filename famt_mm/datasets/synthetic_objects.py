"""An embedded, download-free dataset of objects on textured backgrounds.

``SyntheticObjects`` renders small RGB images on the fly, each holding one
object of a known shape class on a textured background, together with the
exact per-pixel object mask.  Everything is derived with numpy only from
``(seed, split, index)`` through per-index ``np.random.default_rng`` streams,
so an image is identical across calls, processes and dataloader workers and no
global random state is read or changed.

The dataset behaves like any mmpretrain image dataset: ``get_data_info`` (and
therefore ``__getitem__``) already contains the decoded image under ``'img'``
(H x W x 3, uint8, BGR order, exactly what ``LoadImageFromFile`` would give),
so mmpretrain pipelines such as ``RandomResizedCrop``/``RandomFlip``/
``PackInputs`` run directly on it, without ``LoadImageFromFile``.

The masks and labels are kept for later analysis (object-focus metrics of a
masking strategy, linear probing) through :meth:`SyntheticObjects.get_object_mask`,
:meth:`SyntheticObjects.patch_object_fraction` and
:meth:`SyntheticObjects.get_gt_labels`.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS, TRANSFORMS

__all__ = ['SyntheticObjects', 'SHAPE_CLASSES', 'render_synthetic_object',
           'synthetic_label', 'mask_cell_fraction']

#: Object shape classes, in label order.
SHAPE_CLASSES = ('disc', 'square', 'triangle', 'ring', 'cross', 'star',
                 'ellipse', 'diamond')

#: Numeric code of each split inside the random streams (disjoint streams).
_SPLIT_CODES = {'train': 0, 'test': 1, 'val': 2}

#: Object diameter as a fraction of the image side.
OBJECT_SCALE_RANGE = (0.15, 0.45)

# Fixed tags that keep the label stream apart from the image stream.
_LABEL_TAG = 0x1AB31
_TWO_PI = 2.0 * math.pi

# Largest distance of a shape's pixels from its centre, in units of the radius
# used to draw it (for placing the object fully inside the image).
_EXTENT = {
    'disc': 1.0,
    'square': 0.85 * math.sqrt(2.0),
    'triangle': 1.15,
    'ring': 1.0,
    'cross': 1.08,
    'star': 1.0,
    'ellipse': 1.0,
    'diamond': 1.0,
}

_GRIDS: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}


def _split_code(split: str) -> int:
    if split not in _SPLIT_CODES:
        raise ValueError(f'split must be one of {tuple(_SPLIT_CODES)}, '
                         f'got {split!r}')
    return _SPLIT_CODES[split]


def _pixel_grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Read-only (y, x) coordinates of the pixel centres, cached per size."""
    grid = _GRIDS.get(size)
    if grid is None:
        coords = np.arange(size, dtype=np.float32) + 0.5
        yy, xx = np.meshgrid(coords, coords, indexing='ij')
        yy.flags.writeable = False
        xx.flags.writeable = False
        grid = (yy, xx)
        _GRIDS[size] = grid
    return grid


def synthetic_label(seed: int, split: str, index: int,
                    num_classes: int = len(SHAPE_CLASSES)) -> int:
    """Class label of sample ``index``.

    Labels are balanced blockwise: every block of ``num_classes`` consecutive
    indices holds each class once, in an order shuffled by its own stream, so
    a label never depends on the dataset length.
    """
    block, pos = divmod(int(index), num_classes)
    rng = np.random.default_rng(
        [int(seed), _split_code(split), block, num_classes, _LABEL_TAG])
    return int(rng.permutation(num_classes)[pos])


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: bilinear (smoothstep) value noise."""
    lattice = rng.random((cells + 1, cells + 1), dtype=np.float32)
    pos = (np.arange(size, dtype=np.float32) + 0.5) * (cells / size)
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i0.astype(np.float32)
    f = f * f * (3.0 - 2.0 * f)
    rows = (lattice[i0] * (1.0 - f)[:, None] + lattice[i0 + 1] * f[:, None])
    return rows[:, i0] * (1.0 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def _waves(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray,
           size: int, n: int, cycles: Tuple[float, float]) -> np.ndarray:
    """Sum of ``n`` randomly oriented sinusoids, normalised to [0, 1]."""
    theta = rng.uniform(0.0, math.pi, n).tolist()
    freq = (rng.uniform(cycles[0], cycles[1], n) * (_TWO_PI / size)).tolist()
    phase = rng.uniform(0.0, _TWO_PI, n).tolist()
    amp = rng.uniform(0.4, 1.0, n).tolist()
    field = np.zeros_like(xx)
    for k in range(n):
        arg = xx * (freq[k] * math.cos(theta[k]))
        arg += yy * (freq[k] * math.sin(theta[k])) + phase[k]
        np.sin(arg, out=arg)
        arg *= amp[k]
        field += arg
    field -= field.min()
    field *= 1.0 / max(float(field.max()), 1e-6)
    return field


def _shape_mask(shape: str, rng: np.random.Generator, u: np.ndarray,
                v: np.ndarray) -> np.ndarray:
    """Mask of ``shape`` in normalised object coordinates (radius 1)."""
    if shape == 'disc':
        return u * u + v * v <= 1.0
    if shape == 'square':
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == 'triangle':
        # Equilateral triangle, vertices at radius 1.15 (inradius 0.575).
        mask = v <= 0.575
        for ang in (math.radians(210.0), math.radians(330.0)):
            mask &= (u * math.cos(ang) + v * math.sin(ang)) <= 0.575
        return mask
    if shape == 'ring':
        inner = rng.uniform(0.5, 0.65)
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= inner * inner)
    if shape == 'cross':
        w = rng.uniform(0.28, 0.4)
        au, av = np.abs(u), np.abs(v)
        return ((au <= w) & (av <= 1.0)) | ((av <= w) & (au <= 1.0))
    if shape == 'star':
        inner = rng.uniform(0.42, 0.52)
        ang = np.arctan2(v, u) * (5.0 / _TWO_PI)
        tri = np.abs(2.0 * (ang - np.floor(ang)) - 1.0)
        return np.sqrt(u * u + v * v) <= inner + (1.0 - inner) * tri
    if shape == 'ellipse':
        ratio = rng.uniform(0.45, 0.65)
        return u * u + (v * v) * (1.0 / (ratio * ratio)) <= 1.0
    if shape == 'diamond':
        ratio = rng.uniform(0.6, 0.75)
        return np.abs(u) * (1.0 / ratio) + np.abs(v) <= 1.0
    raise ValueError(f'unknown shape {shape!r}')


# Rotation range (degrees, symmetric around 0) per shape.  Square/diamond and
# cross keep a small range so they stay distinguishable from each other.
_ROTATION = {
    'disc': 180.0, 'square': 15.0, 'triangle': 180.0, 'ring': 180.0,
    'cross': 20.0, 'star': 180.0, 'ellipse': 180.0, 'diamond': 15.0,
}


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.random(3, dtype=np.float32) * np.float32(255.0)


def render_synthetic_object(seed: int, split: str, index: int, label: int,
                            img_size: int = 64,
                            object_scale: Tuple[float, float] = OBJECT_SCALE_RANGE,
                            texture: bool = True
                            ) -> Tuple[np.ndarray, np.ndarray]:
    """Render sample ``index`` of stream ``(seed, split)``.

    Args:
        seed (int): Non-negative dataset seed.
        split (str): ``'train'``, ``'test'`` or ``'val'``.
        index (int): Sample index inside the stream.
        label (int): Shape class (index into :data:`SHAPE_CLASSES`).
        img_size (int): Side of the square image.
        object_scale (tuple[float, float]): Range of the object diameter as a
            fraction of the side. Defaults to :data:`OBJECT_SCALE_RANGE`.
        texture (bool): Textured background, textured object and distractors.
            False draws the same random numbers but paints a flat background
            (its mean colour), a flat object and no distractors.

    Returns:
        tuple: ``(img, mask)``, the H x W x 3 uint8 image in BGR order and
        the H x W bool object mask (distractors are not part of it).
    """
    if not 0 <= int(label) < len(SHAPE_CLASSES):
        raise ValueError(f'label must be in [0, {len(SHAPE_CLASSES)}), '
                         f'got {label}')
    shape = SHAPE_CLASSES[int(label)]
    size = int(img_size)
    rng = np.random.default_rng([int(seed), _split_code(split), int(index)])
    yy, xx = _pixel_grid(size)

    # Background: two colours mixed by oriented waves and blotchy noise.
    c1, c2 = _random_colour(rng), _random_colour(rng)
    for _ in range(8):  # keep the two background colours apart (texture)
        if np.linalg.norm(c1 - c2) >= 70.0:
            break
        c2 = _random_colour(rng)
    wave_weight = rng.uniform(0.3, 0.8)
    t = _waves(rng, yy, xx, size, 3, (1.5, 9.0))
    t *= wave_weight
    t += (1.0 - wave_weight) * _value_noise(rng, size,
                                            int(rng.integers(3, 9)))
    # A third colour tints part of the background through a coarse field.
    tint = _random_colour(rng)
    tint_w = _value_noise(rng, size, 2)
    tint_w *= rng.uniform(0.0, 0.45)
    # img = ((1 - t) c1 + t c2)(1 - w) + w tint, in one broadcast.
    keep = 1.0 - tint_w
    img = (c1 * (keep * (1.0 - t))[..., None] +
           c2 * (keep * t)[..., None] + tint * tint_w[..., None])
    bg_mean = img.reshape(-1, 3).mean(axis=0)
    if not texture:  # flat background; later draws stay the same (same geometry)
        img[:] = bg_mean

    # Distractors: 0-2 small blobs that are not part of the object.
    for _ in range(int(rng.integers(0, 3))):
        r_blob = rng.uniform(0.02, 0.05) * size
        ratio = rng.uniform(0.5, 1.0)
        cy, cx = rng.uniform(0.0, size, 2)
        ang = rng.uniform(0.0, math.pi)
        ca, sa = math.cos(ang), math.sin(ang)
        du, dv = xx - cx, yy - cy
        bu = (du * ca + dv * sa) * (1.0 / r_blob)
        bv = (dv * ca - du * sa) * (1.0 / (r_blob * ratio))
        colour = _random_colour(rng)
        if texture:
            img[bu * bu + bv * bv <= 1.0] = colour

    # Object geometry: diameter object_scale of the side, fully inside the image.
    radius = 0.5 * size * rng.uniform(*object_scale)
    margin = min(_EXTENT[shape] * radius + 1.0, 0.5 * size)
    cy, cx = rng.uniform(margin, size - margin, 2)
    ang = math.radians(rng.uniform(-_ROTATION[shape], _ROTATION[shape]))
    ca, sa = math.cos(ang), math.sin(ang)
    du, dv = xx - cx, yy - cy
    u = (du * ca + dv * sa) * (1.0 / radius)
    v = (dv * ca - du * sa) * (1.0 / radius)
    mask = _shape_mask(shape, rng, u, v)
    if not mask.any():  # pragma: no cover - radius >= 4.8 px at 64 px
        mask[min(int(cy), size - 1), min(int(cx), size - 1)] = True

    # Object colour: contrasts with the mean background colour, but the
    # background is itself multicoloured, so colour alone is not a giveaway.
    obj = _random_colour(rng)
    for _ in range(8):
        if np.linalg.norm(obj - bg_mean) >= 80.0:
            break
        obj = _random_colour(rng)
    shift = rng.standard_normal(3)
    shift *= rng.uniform(40.0, 100.0) / max(float(np.linalg.norm(shift)), 1e-6)
    obj2 = obj + shift
    if obj2.min() < 0.0 or obj2.max() > 255.0:  # mirror back into range
        obj2 = obj - shift
    obj2 = np.clip(obj2, 0.0, 255.0)
    # Internal texture (stripes or spots) plus a lighting gradient.
    if rng.random() < 0.5:
        pattern = _waves(rng, yy, xx, size, 1, (6.0, 14.0))
    else:
        pattern = _value_noise(rng, size, int(rng.integers(6, 13)))
    pattern = pattern[mask] * rng.uniform(0.3, 0.9)
    if not texture:
        pattern[:] = 0.0
    light_dir = rng.uniform(0.0, _TWO_PI)
    light = 1.0 + rng.uniform(0.08, 0.25) * np.clip(
        u[mask] * math.cos(light_dir) + v[mask] * math.sin(light_dir),
        -1.2, 1.2)
    img[mask] = ((obj * (1.0 - pattern)[:, None] + obj2 * pattern[:, None]) *
                 light[:, None])

    # Sensor noise over everything (float32 draws keep this cheap).
    sigma = rng.uniform(2.0, 7.0)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= sigma
    img += noise
    np.clip(img, 0.0, 255.0, out=img)
    img = img.astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1]), mask


@DATASETS.register_module()
class SyntheticObjects(BaseDataset):
    """Procedural objects on textured backgrounds (no download needed).

    Each sample is one ``img_size`` x ``img_size`` image holding a single
    object of class ``gt_label`` (one of :data:`SHAPE_CLASSES`) at a random
    position, rotation and scale (diameter 15%-45% of the side), drawn with a
    random internal texture on a random textured background, with 0-2 small
    distractor blobs that are not part of the object mask.  Images are
    rendered on the fly, deterministically from ``(seed, split, index)``.

    Args:
        num_samples (int): Number of samples. Defaults to 2000.
        img_size (int): Side of the square images. Defaults to 64.
        num_classes (int): Number of shape classes, the first ``num_classes``
            of :data:`SHAPE_CLASSES`. Defaults to 8.
        seed (int): Non-negative seed of the whole dataset. Defaults to 0.
        object_scale (tuple[float, float]): Range of the object diameter as a
            fraction of the side. Defaults to (0.15, 0.45); the CPU probe
            experiment uses larger objects (docs/evaluation.md).
        texture (bool): Textured background and object, and distractors
            (default); False gives flat colours and no distractors, with the
            same object geometry. Defaults to True.
        cache (bool): Keep every rendered image and mask in memory (each
            process its own copy; rendering is deterministic, so the cache
            changes speed only). Defaults to False.
        split (str): ``'train'``, ``'test'`` or ``'val'``; each split is its
            own disjoint stream. Defaults to ``'train'``.
        pipeline (Sequence): Transforms (configs or callables); config dicts
            are built from mmpretrain's ``TRANSFORMS``. Defaults to ().
        metainfo (dict, optional): Extra meta information; ``classes`` may
            rename the classes (same count). Defaults to None.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`
            (``lazy_init``, ``serialize_data``, ``test_mode``, ``indices``,
            ``max_refetch``...).
    """

    METAINFO = {'classes': SHAPE_CLASSES}

    def __init__(self,
                 num_samples: int = 2000,
                 img_size: int = 64,
                 num_classes: int = 8,
                 seed: int = 0,
                 split: str = 'train',
                 pipeline: Sequence = (),
                 object_scale: Sequence[float] = OBJECT_SCALE_RANGE,
                 cache: bool = False,
                 texture: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if int(num_samples) < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        if int(img_size) < 16:
            raise ValueError(f'img_size must be >= 16, got {img_size}')
        if not 1 <= int(num_classes) <= len(SHAPE_CLASSES):
            raise ValueError(f'num_classes must be in [1, {len(SHAPE_CLASSES)}]'
                             f', got {num_classes}')
        if int(seed) < 0:
            raise ValueError(f'seed must be non-negative, got {seed}')
        _split_code(split)
        lo, hi = (float(v) for v in object_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError('object_scale must satisfy 0 < low <= high <= 1, got '
                             f'{tuple(object_scale)}')
        self.object_scale = (lo, hi)
        self.cache = bool(cache)
        self.texture = bool(texture)
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self.num_samples = int(num_samples)
        self.img_size = int(img_size)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.split = split

        metainfo = dict(metainfo or {})
        classes = tuple(metainfo.get('classes',
                                     SHAPE_CLASSES[:self.num_classes]))
        if len(classes) != self.num_classes:
            raise ValueError(f'metainfo classes has {len(classes)} names but '
                             f'num_classes={self.num_classes}')
        metainfo['classes'] = classes

        transforms = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline
        ]
        kwargs.setdefault('ann_file', '')
        super().__init__(metainfo=metainfo, pipeline=transforms, **kwargs)

    # ------------------------------------------------------------------
    # Data list / items
    # ------------------------------------------------------------------
    def load_data_list(self):
        """One light record per sample; images are rendered on demand."""
        return [
            dict(
                sample_idx=i,
                gt_label=synthetic_label(self.seed, self.split, i,
                                         self.num_classes),
                img_path=f'synthetic://{self.split}/{i}',
                synthetic_index=i,
            ) for i in range(self.num_samples)
        ]

    def _record(self, idx: int) -> dict:
        """The stored record of dataset position ``idx`` (no image)."""
        return super().get_data_info(idx)

    def _render(self, record: dict) -> Tuple[np.ndarray, np.ndarray]:
        index = record['synthetic_index']
        out = self._cache.get(index)
        if out is None:
            out = render_synthetic_object(self.seed, self.split, index,
                                          record['gt_label'], self.img_size,
                                          self.object_scale, self.texture)
            if self.cache:  # read-only, so a pipeline cannot alter the cache
                for a in out:
                    a.flags.writeable = False
                self._cache[index] = out
        return out

    def get_data_info(self, idx: int) -> dict:
        """Record of ``idx`` with the rendered BGR image, like after
        ``LoadImageFromFile``."""
        info = self._record(idx)
        img, _ = self._render(info)
        info['img'] = img.copy() if self.cache else img  # pipelines may write
        info['img_shape'] = img.shape[:2]
        info['ori_shape'] = img.shape[:2]
        return info

    def get_image(self, idx: int) -> np.ndarray:
        """H x W x 3 uint8 image of ``idx`` in BGR order."""
        return self._render(self._record(idx))[0]

    def get_object_mask(self, idx: int) -> np.ndarray:
        """H x W bool mask of the object in image ``idx``."""
        return self._render(self._record(idx))[1]

    def get_sample(self, idx: int) -> Tuple[np.ndarray, np.ndarray, int]:
        """``(img_bgr, mask, label)`` of ``idx`` from a single render."""
        record = self._record(idx)
        img, mask = self._render(record)
        return img, mask, int(record['gt_label'])

    def patch_object_fraction(self, idx: int,
                              grid_hw: Union[int, Sequence[int]]
                              ) -> np.ndarray:
        """Fraction of each grid cell covered by the object of ``idx``.

        Args:
            idx (int): Dataset index.
            grid_hw (int | tuple[int, int]): Grid size ``(h, w)``; cell
                ``(i, j)`` covers rows ``[i/h, (i+1)/h)`` and columns
                ``[j/w, (j+1)/w)`` of the image (relative coordinates).

        Returns:
            np.ndarray: ``(h, w)`` float64 array in [0, 1], the exact area
            average of the mask over each cell (partially covered pixels are
            weighted by their overlap), so its mean equals the mask's mean.
        """
        return mask_cell_fraction(self.get_object_mask(idx), grid_hw)

    # ------------------------------------------------------------------
    # Labels / metainfo (mmpretrain style)
    # ------------------------------------------------------------------
    @property
    def CLASSES(self):
        """Names of the classes."""
        return self._metainfo.get('classes', None)

    @property
    def class_to_idx(self):
        """Mapping from class name to label."""
        return {name: i for i, name in enumerate(self.CLASSES)}

    def get_gt_labels(self) -> np.ndarray:
        """Labels of all samples (int64 array), without rendering images."""
        return np.array(
            [self._record(i)['gt_label'] for i in range(len(self))],
            dtype=np.int64)

    def get_cat_ids(self, idx: int):
        """Category id of ``idx`` as a one-element list."""
        return [int(self._record(idx)['gt_label'])]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_samples={self.num_samples}, '
                f'img_size={self.img_size}, num_classes={self.num_classes}, '
                f'seed={self.seed}, split={self.split!r}, '
                f'object_scale={self.object_scale})')


def _overlap_matrix(size: int, cells: int) -> np.ndarray:
    """(cells, size) weights: overlap of pixel p with cell i / cell length."""
    edges = np.arange(cells + 1, dtype=np.float64) * (size / cells)
    lo = np.maximum(edges[:-1, None], np.arange(size)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(1, size + 1)[None, :])
    return np.clip(hi - lo, 0.0, None) * (cells / size)


def mask_cell_fraction(mask: np.ndarray,
                       grid_hw: Union[int, Sequence[int]]) -> np.ndarray:
    """Area-average of a 2-D mask over an ``(h, w)`` grid of cells."""
    if isinstance(grid_hw, (int, np.integer)):
        grid_hw = (int(grid_hw), int(grid_hw))
    h, w = (int(g) for g in grid_hw)
    if h < 1 or w < 1:
        raise ValueError(f'grid_hw must be positive, got {grid_hw}')
    mask = np.asarray(mask, dtype=np.float64)
    rows = _overlap_matrix(mask.shape[0], h)
    cols = _overlap_matrix(mask.shape[1], w)
    return rows @ mask @ cols.T
