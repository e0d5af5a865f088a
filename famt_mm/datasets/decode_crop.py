"""Load + FAMT crop in one step, decoding only what the crop needs (issue 21, the data budget).

mmpretrain's MAE pipeline decodes every JPEG at full size (``LoadImageFromFile``, OpenCV),
then ``RandomResizedCrop`` cuts a box and resizes it to 224 x 224 with Pillow's bicubic
filter. :class:`FAMTDecodeRandomResizedCrop` draws the same box from the image's header
alone (same random calls as :class:`FAMTRandomResizedCrop`, so the same seed gives the same
``famt_crop``), then decodes with one of :data:`DECODERS`:

* ``'cv2'``: OpenCV at full size, then the crop and Pillow resize: today's pixels exactly;
* ``'pillow'``: Pillow at full size, resized straight from the decoded image (no numpy
  round trips); ``'torchvision'``: ``torchvision.io.decode_jpeg`` on the CPU at full size;
* ``'pillow-draft'`` / ``'cv2-reduced'``: JPEG DCT scaling (Pillow's ``Image.draft``,
  OpenCV's ``IMREAD_REDUCED_COLOR_N``) at the largest factor 2, 4 or 8 for which the crop box
  still spans at least the output size on both sides, else at full size; the box is mapped
  to the reduced image as a sub-pixel ``box`` of Pillow's resize, so the crop record stays
  exact in the original image's coordinates (only pixel values change, by DCT scaling).

Every decoder returns BGR like ``LoadImageFromFile`` (the data preprocessor's ``to_rgb``
and the refresh's loader stay as they are). Files that are not plain JPEGs (PNG, CMYK) or
carry an EXIF rotation are decoded by OpenCV at full size, exactly as ``LoadImageFromFile``.

:class:`FAMTJPEGCropRecord` is the CPU side of the GPU path: file bytes, crop box and flip
chosen on the CPU as above; :func:`decode_crop_batch` decodes (``decode_jpeg``, nvJPEG on
``device='cuda'``), crops, resizes and flips the batch on the device.
"""
import io
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import mmengine.fileio as fileio
import numpy as np
import torch
from mmcv.transforms import RandomFlip
from PIL import Image
from mmpretrain.registry import TRANSFORMS

from .loading import unreadable_image
from .transforms import FAMTRandomResizedCrop

#: ``decode=`` values of :class:`FAMTDecodeRandomResizedCrop` (see module doc).
DECODERS = ('cv2', 'pillow', 'pillow-draft', 'cv2-reduced', 'torchvision')
#: DCT scaling factors libjpeg offers (1/2, 1/4, 1/8 of each side).
REDUCTIONS = (8, 4, 2)
_CV2_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}
_PILLOW_FILTERS = {'nearest': Image.NEAREST, 'bilinear': Image.BILINEAR,
                   'bicubic': Image.BICUBIC, 'area': Image.BOX, 'lanczos': Image.LANCZOS}
_EXIF_ORIENTATION = 0x0112


def largest_reduction(crop_wh: Tuple[int, int], out_wh: Tuple[int, int]) -> int:
    """Largest of 8, 4, 2 (else 1) with ``crop / factor >= out`` on both sides."""
    for factor in REDUCTIONS:
        if crop_wh[0] >= out_wh[0] * factor and crop_wh[1] >= out_wh[1] * factor:
            return factor
    return 1


def jpeg_header(data: bytes) -> Tuple[Image.Image, bool]:
    """(lazily opened image, whether DCT scaling / Pillow decoding gives cv2's picture).

    False for non-JPEGs, CMYK / YCCK JPEGs (OpenCV and Pillow convert them differently) and
    EXIF-rotated ones (OpenCV applies the rotation, Pillow does not).
    """
    img = Image.open(io.BytesIO(data))
    plain = img.format == 'JPEG' and img.mode in ('RGB', 'L') and (
        img.getexif().get(_EXIF_ORIENTATION, 1) == 1)
    return img, plain


def _cv2_full(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError('OpenCV could not decode the file')
    return img


def _pil_view(bgr: np.ndarray) -> Image.Image:
    """The decoded array as a Pillow image: one contiguous copy (mmcv's path hands Pillow a
    strided view of the crop, whose element-wise copy costs more than the resize).

    Pillow's filters work per channel, so BGR goes in and comes out as BGR."""
    bgr = np.ascontiguousarray(bgr)
    return Image.frombuffer('RGB', (bgr.shape[1], bgr.shape[0]), bgr, 'raw', 'RGB', 0, 1)


def _resize_box(img: Image.Image, box: Sequence[float], out_wh: Tuple[int, int],
                resample: int) -> Image.Image:
    """Resize the sub-pixel ``box`` (x1, y1, x2, y2) of ``img`` to ``out_wh``.

    Cuts the enclosing whole-pixel region first, so the filter sees no pixels beyond it,
    as in crop-then-resize (for a whole-pixel box the result is exactly that).
    """
    x1, y1 = math.floor(box[0]), math.floor(box[1])
    x2 = min(math.ceil(box[2]), img.size[0])
    y2 = min(math.ceil(box[3]), img.size[1])
    region = img.crop((x1, y1, x2, y2))
    return region.resize(out_wh, resample,
                         box=(box[0] - x1, box[1] - y1, min(box[2], x2) - x1,
                              min(box[3], y2) - y1))


def decode_crop_resize(data: bytes, crop_xywh: Tuple[int, int, int, int],
                       out_hw: Tuple[int, int], decode: str = 'cv2-reduced',
                       interpolation: str = 'bicubic',
                       header: Optional[Image.Image] = None) -> Tuple[np.ndarray, int]:
    """The crop ``(left, top, width, height)`` (original pixels) of a plain JPEG, resized.

    ``header``: the file opened by :func:`jpeg_header` (opened here if None). Returns
    (``out_hw + (3,)`` uint8 BGR array, the DCT reduction factor used: 1, 2, 4 or 8).
    """
    left, top, cw, ch = crop_xywh
    out_wh = (out_hw[1], out_hw[0])
    resample = _PILLOW_FILTERS[interpolation]
    box = (left, top, left + cw, top + ch)
    factor = largest_reduction((cw, ch), out_wh) if decode in ('pillow-draft', 'cv2-reduced') \
        else 1
    if decode == 'cv2':
        return np.array(_resize_box(_pil_view(_cv2_full(data)), box, out_wh, resample)), 1
    if decode in ('pillow', 'pillow-draft'):
        header = header if header is not None else Image.open(io.BytesIO(data))
        if factor > 1:
            header.draft('RGB', (header.size[0] // factor, header.size[1] // factor))
            factor = header.decoderconfig[0] if header.decoderconfig else 1
        rgb = header.convert('RGB')
        out = _resize_box(rgb, [v / factor for v in box], out_wh, resample)
        return np.asarray(out)[..., ::-1].copy(), factor
    if decode == 'cv2-reduced':
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_REDUCED[factor]) if factor > 1 \
            else _cv2_full(data)
        if bgr is None:
            raise OSError('OpenCV could not decode the file')
        out = _resize_box(_pil_view(bgr), [v / factor for v in box], out_wh, resample)
        return np.array(out), factor
    if decode == 'torchvision':
        from torchvision.io import ImageReadMode, decode_jpeg
        chw = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                          mode=ImageReadMode.RGB)
        rgb = Image.fromarray(chw.permute(1, 2, 0).numpy())
        return np.asarray(_resize_box(rgb, box, out_wh, resample))[..., ::-1].copy(), 1
    raise ValueError(f'decode={decode!r}; use one of {DECODERS}')


def _read(results: dict, backend_args: Optional[dict]) -> bytes:
    return fileio.get(results['img_path'], backend_args=backend_args)


@TRANSFORMS.register_module()
class FAMTDecodeRandomResizedCrop(FAMTRandomResizedCrop):
    """``LoadImageFromFile`` + :class:`FAMTRandomResizedCrop` in one step (see module doc).

    Reads ``img_path``; sets ``img`` (``scale`` H x W x 3, uint8 BGR), ``img_shape``,
    ``ori_shape`` (the file's H, W), ``famt_crop`` (normalised x1, y1, x2, y2 in the
    original image, as :class:`FAMTRandomResizedCrop`) and ``famt_decode_factor``.

    Args:
        decode (str): one of :data:`DECODERS`; ``'cv2-reduced'`` is the fastest CPU path
            measured (docs/benchmark.md, "The data budget").
        ignore_empty (bool): skip an unreadable file with a warning naming it (mmengine's
            dataset then takes another image), like ``FAMTLoadImageFromFile``.
        backend_args (dict, optional): file backend, as ``LoadImageFromFile``.
        **crop_args: ``RandomResizedCrop``'s (``scale``, ``crop_ratio_range``, ...);
            ``backend`` must be ``'pillow'`` (the sub-pixel box is a Pillow feature).
    """

    def __init__(self, *args, decode: str = 'cv2-reduced', ignore_empty: bool = False,
                 backend_args: Optional[dict] = None, **crop_args):
        super().__init__(*args, **crop_args)
        if decode not in DECODERS:
            raise ValueError(f'FAMTDecodeRandomResizedCrop: decode={decode!r}; use one of '
                             f'{DECODERS}')
        if self.backend != 'pillow':
            raise ValueError(f"FAMTDecodeRandomResizedCrop: backend={self.backend!r}; it "
                             "resizes with Pillow only, set backend='pillow' (or use "
                             'LoadImageFromFile + FAMTRandomResizedCrop for OpenCV resizing)')
        self.decode = decode
        self.ignore_empty = ignore_empty
        self.backend_args = backend_args

    def transform(self, results: dict) -> Optional[dict]:
        path = results.get('img_path', '?')
        try:
            data = _read(results, self.backend_args)
            header, plain = jpeg_header(data) if self.decode != 'cv2' else (None, False)
            if plain:
                w, h = header.size
            else:  # decoded as LoadImageFromFile does (cv2, EXIF rotation applied)
                bgr = _cv2_full(data)
                h, w = bgr.shape[:2]
            top, left, ch, cw = self.rand_crop_params(np.empty((h, w, 0), np.uint8))
            if plain:
                img, factor = decode_crop_resize(data, (left, top, cw, ch), tuple(self.scale),
                                                 self.decode, self.interpolation, header)
            else:
                img, factor = np.array(_resize_box(
                    _pil_view(bgr), (left, top, left + cw, top + ch),
                    (self.scale[1], self.scale[0]), _PILLOW_FILTERS[self.interpolation])), 1
        except Exception as e:  # noqa: BLE001  (any reader / decoder error)
            return unreadable_image('FAMTDecodeRandomResizedCrop', path, e, self.ignore_empty)
        results.update(img=img, img_shape=img.shape, ori_shape=(h, w),
                       famt_crop=(left / w, top / h, (left + cw) / w, (top + ch) / h),
                       famt_decode_factor=factor)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(scale={self.scale}, decode={self.decode!r})'


@TRANSFORMS.register_module()
class FAMTJPEGCropRecord(FAMTRandomResizedCrop):
    """CPU side of the GPU decoding path: file bytes, crop box and flip; no pixels.

    Sets ``jpeg`` (uint8 array of the file), ``crop_xywh`` (left, top, width, height in
    original pixels), ``ori_shape``, ``famt_crop`` (as :class:`FAMTRandomResizedCrop`, same
    random calls), ``flip`` and ``flip_direction`` (drawn after the box by mmcv's
    ``RandomFlip(prob=flip_prob)``, horizontal: the same random calls as ``RandomFlip``
    after the crop; ``flip_prob=None``: no flip and no draw, as a pipeline without
    ``RandomFlip``). :func:`decode_crop_batch` makes the pixels on the device.
    """

    def __init__(self, *args, flip_prob: Optional[float] = 0.5,
                 backend_args: Optional[dict] = None, **crop_args):
        super().__init__(*args, **crop_args)
        self.flipper = None if flip_prob is None else RandomFlip(prob=flip_prob,
                                                                 direction='horizontal')
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        data = _read(results, self.backend_args)
        header, plain = jpeg_header(data)
        if plain:
            w, h = header.size
        else:  # PNG, CMYK, EXIF-rotated (a few in ImageNet; nvJPEG applies no rotation):
            bgr = _cv2_full(data)  # re-encoded once as the JPEG of what LoadImageFromFile sees
            h, w = bgr.shape[:2]
            data = cv2.imencode('.jpg', bgr, [
                cv2.IMWRITE_JPEG_QUALITY, 100, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])[1].tobytes()
        top, left, ch, cw = self.rand_crop_params(np.empty((h, w, 0), np.uint8))
        direction = self.flipper._choose_direction() if self.flipper else None
        results.update(jpeg=np.frombuffer(bytearray(data), np.uint8),
                       crop_xywh=(left, top, cw, ch),
                       ori_shape=(h, w), img_shape=tuple(self.scale),
                       famt_crop=(left / w, top / h, (left + cw) / w, (top + ch) / h),
                       flip=direction is not None, flip_direction=direction)
        return results


def decode_crop_batch(jpegs: List[np.ndarray], crops_xywh: Sequence[Sequence[int]],
                      flips: Sequence[bool], out_hw: Tuple[int, int],
                      device: str = 'cuda') -> torch.Tensor:
    """Decode, crop, resize (bicubic, antialiased) and flip a batch on ``device``.

    Args:
        jpegs: the files' bytes (uint8 arrays), as :class:`FAMTJPEGCropRecord` gives them.
        crops_xywh: (left, top, width, height) per image, original pixels.
        flips: horizontal flip per image (after the crop, as ``RandomFlip``).
        out_hw: output (H, W).

    Returns:
        (N, 3, H, W) uint8 RGB tensor on ``device``.
    """
    from torchvision.io import ImageReadMode, decode_jpeg
    data = [torch.from_numpy(j) for j in jpegs]
    images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    out = []
    for img, (left, top, cw, ch), flip in zip(images, crops_xywh, flips):
        crop = img[:, top:top + ch, left:left + cw].unsqueeze(0).float()
        crop = torch.nn.functional.interpolate(crop, size=tuple(out_hw), mode='bicubic',
                                               align_corners=False, antialias=True)
        out.append(crop.flip(-1) if flip else crop)
    return torch.cat(out).round_().clamp_(0, 255).to(torch.uint8)
