"""The decoding crop (FAMTDecodeRandomResizedCrop) and the GPU path's CPU side against today's
Pillow path (LoadImageFromFile + FAMTRandomResizedCrop + RandomFlip): the same crop record
exactly, the same pixels within a stated tolerance, accepted by the FAMT pipeline checks."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile, RandomFlip
from mmpretrain.datasets import CustomDataset
from PIL import Image

import famt_mm  # noqa: F401
from famt_mm.datasets import (DECODERS, FAMTDecodeRandomResizedCrop, FAMTJPEGCropRecord,
                              decode_crop_batch, make_imagenet_like_jpegs,
                              make_imagenet_like_root)
from famt_mm.datasets.decode_crop import largest_reduction
from famt_mm.datasets.imagenet_like_jpegs import imagenet_like_image
from famt_mm.datasets.pipeline_checks import check_refresh_pipeline, check_train_pipeline
from famt_mm.datasets.transforms import FAMTRandomResizedCrop, whole_image_pipeline
from famt_mm.models.famt_sampling import map_weights_to_crop
from famt_mm.recipe import famt_pipeline

CROP = dict(scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow', interpolation='bicubic')
MAE_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', **CROP),
                dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
#: Reduced (DCT-scaled) decoding against full decoding + resize, per crop, in grey levels on
#: these textured test images: mean absolute difference, and its 99th percentile.
REDUCED_MEAN_TOL, REDUCED_P99_TOL = 6.0, 30
#: decode_crop_batch (torch's antialiased bicubic) against Pillow's bicubic, per crop: mean
#: and largest absolute difference (a PNG's re-encoding as JPEG adds ~0.3 to the mean).
TORCH_RESIZE_MEAN_TOL, TORCH_RESIZE_MAX_TOL = 0.6, 12


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    """Two ImageNet-size JPEGs, two large ones (reducible crops), a grey one, an EXIF-rotated
    one and a PNG named .JPEG (the last two must take OpenCV's full decode)."""
    root = tmp_path_factory.mktemp('jpegs')
    paths = make_imagenet_like_jpegs(str(root / 'small'), 2, seed=0)
    rng = np.random.default_rng(1)
    for name, (w, h) in (('big_a', (1600, 1200)), ('big_b', (1100, 1500))):
        Image.fromarray(imagenet_like_image(w, h, rng)).save(root / f'{name}.JPEG', quality=90)
        paths.append(str(root / f'{name}.JPEG'))
    Image.fromarray(imagenet_like_image(900, 700, rng)).convert('L').save(
        root / 'grey.JPEG', quality=90)
    rotated = Image.fromarray(imagenet_like_image(600, 400, rng))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display: OpenCV applies it, Pillow does not
    rotated.save(root / 'rotated.JPEG', quality=90, exif=exif)
    Image.fromarray(imagenet_like_image(300, 200, rng)).save(root / 'png.JPEG', format='PNG')
    return paths + [str(root / n) for n in ('grey.JPEG', 'rotated.JPEG', 'png.JPEG')]


def reference(path, seed):
    """Today's path: cv2 decode, FAMTRandomResizedCrop, RandomFlip (seeded)."""
    np.random.seed(seed)
    out = FAMTRandomResizedCrop(**CROP)(LoadImageFromFile()(dict(img_path=path)))
    return RandomFlip(prob=0.5)(out)


def test_generated_folder_has_imagenet_like_files(tmp_path):
    paths = make_imagenet_like_jpegs(str(tmp_path), 6, seed=3)
    assert len(paths) == 6 and all(p.endswith('.JPEG') for p in paths)
    assert osp.basename(osp.dirname(paths[0])) == 'class_00'
    sizes = [Image.open(p).size for p in paths]
    assert all(150 <= min(s) and max(s) <= 1600 for s in sizes)
    assert make_imagenet_like_jpegs(str(tmp_path), 6, seed=3) == paths  # deterministic
    assert [Image.open(p).size for p in paths] == sizes


def test_generated_root_reads_as_imagenet_and_is_reused(tmp_path):
    from mmpretrain.datasets import ImageNet
    root = make_imagenet_like_root(str(tmp_path / 'a'), 12, seed=3)
    dataset = ImageNet(data_root=root, split='train')
    assert len(dataset) == 12
    info = dataset.get_data_info(5)
    assert info['img_path'].endswith('class_03/000003.JPEG') and info['gt_label'] == 3
    kb = np.mean([os.path.getsize(dataset.get_data_info(i)['img_path']) for i in range(12)]) / 1e3
    assert 30 < kb < 300  # photo-like, not flat colour (a few KB)
    mtime = os.path.getmtime(info['img_path'])
    make_imagenet_like_root(root, 12, seed=3)  # the same recipe: reused, not rewritten
    assert os.path.getmtime(info['img_path']) == mtime
    before = open(info['img_path'], 'rb').read()
    make_imagenet_like_root(root, 12, seed=4)  # another seed: rewritten
    assert open(info['img_path'], 'rb').read() != before


def test_largest_reduction_keeps_the_output_size_on_both_sides():
    assert largest_reduction((447, 1000), (224, 224)) == 1
    assert largest_reduction((448, 900), (224, 224)) == 2
    assert largest_reduction((1792, 1792), (224, 224)) == 8
    assert largest_reduction((1791, 1792), (224, 224)) == 4


@pytest.mark.parametrize('decode', DECODERS)
def test_same_crop_record_and_pixels_as_the_pillow_path(jpegs, decode):
    crop = FAMTDecodeRandomResizedCrop(decode=decode, **CROP)
    flip = RandomFlip(prob=0.5)
    factors = []
    for path in jpegs:
        for seed in range(4):
            ref = reference(path, seed)
            np.random.seed(seed)
            new = flip(crop(dict(img_path=path)))
            assert new['famt_crop'] == ref['famt_crop']  # exact: same box, same image size
            assert new['flip'] == ref['flip'] and new['ori_shape'] == ref['ori_shape']
            assert new['img'].shape == ref['img'].shape == (224, 224, 3)
            diff = np.abs(new['img'].astype(np.int16) - ref['img'].astype(np.int16))
            factors.append(new['famt_decode_factor'])
            if new['famt_decode_factor'] == 1:
                assert diff.max() == 0, (path, decode)  # all decoders: libjpeg-turbo, same IDCT
            else:
                assert diff.mean() <= REDUCED_MEAN_TOL, (path, diff.mean())
                assert np.percentile(diff, 99) <= REDUCED_P99_TOL, path
    reduces = decode in ('pillow-draft', 'cv2-reduced')
    assert (max(factors) > 1) == reduces  # the large images' big crops are decoded reduced


def test_reduced_decoding_keeps_the_geometry_to_a_fraction_of_a_pixel(tmp_path):
    """A bright square's centroid lands on the same output pixel with and without DCT
    scaling: the sub-pixel box maps the original crop onto the reduced image exactly."""
    img = np.full((1400, 1800, 3), 40, np.uint8)
    img[613:661, 1013:1061] = 230
    path = str(tmp_path / 'square.JPEG')
    Image.fromarray(img).save(path, quality=95)

    def centroid(a):
        w = a[..., 0].astype(np.float64) - 40
        w[w < 20] = 0
        yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
        return (yy * w).sum() / w.sum(), (xx * w).sum() / w.sum()

    crop = FAMTDecodeRandomResizedCrop(decode='pillow-draft', **CROP)
    checked = 0
    for seed in range(40):
        ref = reference(path, seed)
        np.random.seed(seed)
        new = crop(dict(img_path=path))
        if new['famt_decode_factor'] == 1 or ref['img'][..., 0].max() < 200:
            continue
        if ref['flip']:
            ref['img'] = ref['img'][:, ::-1]
        assert np.allclose(centroid(new['img']), centroid(ref['img']), atol=0.35)
        checked += 1
    assert checked >= 3


def test_weight_maps_follow_the_same_crop(jpegs):
    """The bank's maps are cut by famt_crop and the flip: identical records, identical maps."""
    record = FAMTJPEGCropRecord(**CROP)
    decoding = FAMTDecodeRandomResizedCrop(decode='pillow-draft', **CROP)
    maps = torch.rand(len(jpegs), 14, 14)
    boxes = {name: [] for name in ('ref', 'draft', 'gpu')}
    flips = {name: [] for name in boxes}
    for i, path in enumerate(jpegs):
        ref = reference(path, i)
        np.random.seed(i)
        draft = RandomFlip(prob=0.5)(decoding(dict(img_path=path)))
        np.random.seed(i)
        gpu = record(dict(img_path=path))
        for name, out in (('ref', ref), ('draft', draft), ('gpu', gpu)):
            boxes[name].append(out['famt_crop'])
            flips[name].append(out['flip'])
    cut = {name: map_weights_to_crop(maps, torch.tensor(boxes[name], dtype=torch.float64),
                                     (14, 14), torch.tensor(flips[name]))
           for name in boxes}
    assert torch.equal(cut['draft'], cut['ref']) and torch.equal(cut['gpu'], cut['ref'])


def test_gpu_path_batch_equals_the_pillow_path_on_the_cpu(jpegs):
    """decode_crop_batch on device='cpu' (nvJPEG's place taken by libjpeg-turbo): crop, resize
    and flip on the batch give the Pillow path's crops within the resize filters' difference
    (plus JPEG re-encoding for the PNG)."""
    plain = jpegs  # grey, and the EXIF-rotated one and the PNG (the record re-encodes them)
    record = FAMTJPEGCropRecord(**CROP)
    recs, refs = [], []
    for i, path in enumerate(plain):
        refs.append(reference(path, i)['img'][..., ::-1])  # BGR -> RGB
        np.random.seed(i)
        recs.append(record(dict(img_path=path)))
    out = decode_crop_batch([r['jpeg'] for r in recs], [r['crop_xywh'] for r in recs],
                            [r['flip'] for r in recs], (224, 224), device='cpu')
    assert out.shape == (len(plain), 3, 224, 224) and out.dtype == torch.uint8
    for got, ref in zip(out, refs):
        diff = np.abs(got.permute(1, 2, 0).numpy().astype(np.int16) - ref.astype(np.int16))
        assert diff.mean() <= TORCH_RESIZE_MEAN_TOL and diff.max() <= TORCH_RESIZE_MAX_TOL


def test_unreadable_file_is_named_or_skipped(tmp_path):
    bad = tmp_path / 'empty.JPEG'
    bad.write_bytes(b'')
    with pytest.raises(OSError, match='empty.JPEG'):
        FAMTDecodeRandomResizedCrop(**CROP)(dict(img_path=str(bad)))
    assert FAMTDecodeRandomResizedCrop(ignore_empty=True, **CROP)(
        dict(img_path=str(bad))) is None
    with pytest.raises(ValueError, match="backend='pillow'"):
        FAMTDecodeRandomResizedCrop(scale=224, backend='cv2')
    with pytest.raises(ValueError, match='decode='):
        FAMTDecodeRandomResizedCrop(scale=224, decode='nvjpeg')


def test_switch_builds_a_pipeline_the_famt_checks_accept(jpegs, tmp_path):
    small = osp.dirname(osp.dirname(jpegs[0]))  # root/small/class_00/000000.JPEG
    pipeline = famt_pipeline(MAE_PIPELINE, decode='pillow-draft')
    assert [t['type'] for t in pipeline] == ['FAMTDecodeRandomResizedCrop', 'RandomFlip',
                                             'PackInputs']
    dataset = CustomDataset(data_root=small, pipeline=pipeline,
                            with_label=False)
    assert check_train_pipeline(dataset, (224, 224), (14, 14)) is None
    assert 'ignore_empty=True' in check_train_pipeline(dataset, (224, 224), (14, 14),
                                                       on_bad_image='skip')
    skipping = famt_pipeline([dict(MAE_PIPELINE[0], ignore_empty=True)] + MAE_PIPELINE[1:],
                             decode='pillow-draft')
    dataset_skipping = CustomDataset(data_root=small, pipeline=skipping,
                                     with_label=False)
    assert check_train_pipeline(dataset_skipping, (224, 224), (14, 14), 'skip') is None
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 224, 224)
    assert len(sample['data_samples'].famt_crop) == 4
    # the refresh sees the whole image: the loader comes back in front of the resize
    refresh = whole_image_pipeline(pipeline, (224, 224))
    assert [t['type'] for t in refresh] == ['LoadImageFromFile', 'Resize', 'PackInputs']
    check_refresh_pipeline(refresh)
    with pytest.raises(ValueError, match='plain LoadImageFromFile'):
        famt_pipeline([dict(type='LoadImageFromFile', to_float32=True)] + MAE_PIPELINE[1:],
                      decode='pillow-draft')
