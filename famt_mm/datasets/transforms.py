"""Transforms that carry crop geometry, so weight maps follow the augmentation."""
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import (RandomResizedCrop,
                                            RandomResizedCropAndInterpolationWithTwoPic)
from mmpretrain.registry import TRANSFORMS

#: Name parts of transforms that change an image at random or move it: the weight
#: refresh must see the whole, un-augmented image (docs/method.md section 3).
AUGMENTING = ('Random', 'ColorJitter', 'RandAugment', 'AutoAugment', 'GaussianBlur',
              'Solarize', 'Posterize', 'Mixup', 'CutMix', 'Lighting')
GEOMETRIC = ('Crop', 'Flip')
#: Crops that read the file themselves (famt_mm.datasets.decode_crop): no loader before them.
DECODING_CROPS = ('FAMTDecodeRandomResizedCrop', 'FAMTJPEGCropRecord')


def transform_name(t) -> str:
    return t['type'] if isinstance(t, dict) else type(t).__name__


def whole_image_pipeline(train_pipeline, img_hw):
    """The training pipeline's loading steps, then ``Resize`` to ``img_hw`` and ``PackInputs``.

    How the weight refresh (and the pictures) see an image: whole, un-augmented.
    """
    steps = []
    for t in train_pipeline:
        name = transform_name(t)
        if name in DECODING_CROPS:  # it loads the file too: the refresh loads it whole
            args = t.get('backend_args') if isinstance(t, dict) else t.backend_args
            steps.append(dict(type='LoadImageFromFile', backend_args=args))
        if name == 'PackInputs' or any(a in name for a in AUGMENTING + GEOMETRIC):
            break
        steps.append(t)
    return steps + [dict(type='Resize', scale=(img_hw[1], img_hw[0]), backend='pillow',
                         interpolation='bicubic'),
                    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path'))]


#: Meta keys the FAMT training pipeline must pack (``PackInputs(meta_keys=...)``).
FAMT_META_KEYS = ('sample_idx', 'img_path', 'famt_crop', 'flip', 'flip_direction')


@TRANSFORMS.register_module()
class FAMTRandomResizedCrop(RandomResizedCrop):
    """mmpretrain's ``RandomResizedCrop`` that also records its crop box.

    Adds ``results['famt_crop']``: the crop as ``(x1, y1, x2, y2)`` in the
    normalised coordinates of the image it was cut from (floats in [0, 1], x2 and
    y2 exclusive). The FAMT weight bank is computed on the whole image, so this
    box is exactly what maps a stored weight map onto the crop's patch grid.
    Same arguments as ``RandomResizedCrop``.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        top, left, crop_h, crop_w = self.rand_crop_params(img)
        img = mmcv.imcrop(img, bboxes=np.array([left, top, left + crop_w - 1, top + crop_h - 1]))
        results['img'] = mmcv.imresize(
            img, tuple(self.scale[::-1]), interpolation=self.interpolation,
            backend=self.backend)
        results['img_shape'] = results['img'].shape
        results['famt_crop'] = (left / w, top / h, (left + crop_w) / w, (top + crop_h) / h)
        return results


def unflipped_box(results: dict, left: int, top: int, crop_w: int, crop_h: int,
                  w: int, h: int) -> tuple:
    """The crop ``[left, left + crop_w) x [top, top + crop_h)`` of a ``w`` x ``h`` image as
    ``famt_crop`` in the coordinates of the image before any ``RandomFlip`` in ``results``.

    A crop of the flipped image is the flipped crop of the mirrored box of the unflipped one;
    the mask generator flips the mapped weights by the packed ``flip``, so the box it maps
    must be the mirrored one. Returns (x1, y1, x2, y2), normalised, x2 and y2 exclusive.
    """
    direction = results.get('flip_direction') if results.get('flip', False) else None
    if direction in ('horizontal', 'diagonal'):
        left = w - left - crop_w
    if direction in ('vertical', 'diagonal'):
        top = h - top - crop_h
    return (left / w, top / h, (left + crop_w) / w, (top + crop_h) / h)


@TRANSFORMS.register_module()
class FAMTRandomResizedCropAndInterpolationWithTwoPic(
        RandomResizedCropAndInterpolationWithTwoPic):
    """mmpretrain's BEiT / CAE crop (one box, resized to ``size`` and, with ``second_size``,
    to the tokenizer's size too) that also records the box as ``results['famt_crop']``.

    Same arguments, same random calls and same output (``img``: one array, or the list
    ``[img, target_img]`` with ``second_size``) as
    ``RandomResizedCropAndInterpolationWithTwoPic``. The box is in normalised coordinates
    of the image before the recipe's ``RandomFlip`` (BEiT's comes before the crop), see
    :func:`unflipped_box`. ``size`` is (w, h), as ``mmcv.imresize`` reads it.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        top, left, crop_h, crop_w = self.get_params(img, self.scale, self.ratio)
        interpolation = self.interpolation
        if isinstance(interpolation, (tuple, list)):  # 'random': drawn after the box
            interpolation = np.random.choice(interpolation)
        crop = img[top:top + crop_h, left:left + crop_w]
        view = mmcv.imresize(crop, self.size, interpolation=interpolation)
        if self.second_size is not None:
            view = [view, mmcv.imresize(crop, self.second_size,
                                        interpolation=self.second_interpolation)]
        results['img'] = view
        results['famt_crop'] = unflipped_box(results, left, top, crop_w, crop_h, w, h)
        return results
