"""Dataset files mmpretrain would reject deep inside are named at start with the fix: an
ImageNet folder with fewer than 1000 classes and no meta/train.txt, an empty annotation
file. The fixes named work with mmpretrain's real datasets."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmpretrain.datasets import CustomDataset, ImageNet

from famt_mm.datasets.dataset_checks import check_dataset_files, dataset_problem


def imagenet_subset(root, classes=('n01440764', 'n01443537')):
    for wnid in classes:
        (root / 'train' / wnid).mkdir(parents=True)
        cv2.imwrite(str(root / 'train' / wnid / f'{wnid}_1.JPEG'),
                    np.zeros((8, 8, 3), np.uint8))
    return root


def test_an_imagenet_subset_without_meta_names_the_custom_folder_config(tmp_path):
    root = imagenet_subset(tmp_path / 'imagenet')
    args = dict(data_root=str(root), split='train')
    cfg = dict(type='ImageNet', **args)
    with pytest.raises(AssertionError, match="number of subfolders"):
        ImageNet(**args, pipeline=[])  # what mmpretrain says by itself
    problem = dataset_problem(cfg)
    assert 'has 2 class folders' in problem and 'famt_mae_vit-s_custom-folder.py' in problem
    # The fix named: the custom-folder config's CustomDataset reads the subset.
    assert len(CustomDataset(data_root=str(root), data_prefix='', ann_file='',
                             with_label=False, pipeline=[])) == 2
    # ... or a meta/train.txt keeps ImageNet (and the check is satisfied).
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text(
        'n01440764/n01440764_1.JPEG 0\nn01443537/n01443537_1.JPEG 1\n')
    assert dataset_problem(cfg) is None
    assert len(ImageNet(**args, pipeline=[])) == 2


def test_an_empty_annotation_file_is_named_inside_wrappers_of_a_config(tmp_path):
    root = imagenet_subset(tmp_path / 'imagenet')
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text('')
    with pytest.raises(ValueError, match='need at least one array'):
        ImageNet(data_root=str(root), split='train', pipeline=[])  # mmpretrain by itself
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2,
        dataset=dict(type='mmpretrain.ImageNet', data_root=str(root), split='train')))))
    with pytest.raises(ValueError, match=r'train_dataloader.dataset: ImageNet: the annotation '
                       r'file .*meta/train.txt is empty'):
        check_dataset_files(cfg)
