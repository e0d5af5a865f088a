"""make_jpeg_folder: ImageNet's layout, ImageNet-like sizes and file sizes, deterministic."""
import os
import os.path as osp

from mmpretrain.datasets import ImageNet
from PIL import Image

from famt_mm.datasets import make_jpeg_folder
from famt_mm.datasets.jpeg_folder import IMAGE_SIZES


def test_folder_reads_as_imagenet_and_is_deterministic(tmp_path):
    paths = make_jpeg_folder(str(tmp_path / 'a'), 12, seed=3, num_classes=4)
    dataset = ImageNet(data_root=str(tmp_path / 'a'), split='train')
    assert len(dataset) == 12
    info = dataset.get_data_info(5)
    assert info['img_path'] == paths[5] and info['gt_label'] == 5 % 4
    sizes = {Image.open(p).size for p in paths}
    assert sizes <= {s for s, _ in IMAGE_SIZES}
    kb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e3
    assert 30 < kb < 200  # photo-like, not flat colour (a few KB)
    again = make_jpeg_folder(str(tmp_path / 'b'), 12, seed=3, num_classes=4)
    assert all(open(p, 'rb').read() == open(q, 'rb').read() for p, q in zip(paths, again))
    mtime = os.path.getmtime(paths[0])
    make_jpeg_folder(str(tmp_path / 'a'), 12, seed=3, num_classes=4)  # reused, not rewritten
    assert os.path.getmtime(paths[0]) == mtime
    assert open(osp.join(tmp_path, 'a', 'meta', 'train.txt')).readline() == (
        'n00000000/n00000000_0.JPEG 0\n')
