"""Start-up checks of dataset files that mmpretrain reports only deep inside (an ImageNet
folder with fewer than 1000 classes, an empty annotation file), with the fix named."""
import os
import os.path as osp
from typing import Optional

IMAGENET_CLASSES = 1000
# Dataset types that read ``ann_file`` as mmpretrain's CustomDataset does.
ANNOTATED_TYPES = ('CustomDataset', 'ImageNet', 'ImageNet21k')
SUBSET_FIX = ('pre-train on it with configs/famt_mae_vit-s_custom-folder.py (CustomDataset: '
              'any folder of images, no labels; --cfg-options '
              'train_dataloader.dataset.data_root=DIR)')


def _type_name(cfg: dict) -> str:
    kind = cfg.get('type', '')
    return kind.split('.')[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')


def _image_prefix(cfg: dict) -> str:
    prefix = cfg.get('data_prefix', '')
    return prefix.get('img_path', '') if isinstance(prefix, dict) else prefix


def _nonblank_lines(path: str) -> int:
    with open(path, encoding='utf-8') as f:
        return sum(1 for line in f if line.strip())


def dataset_problem(cfg: Optional[dict]) -> Optional[str]:
    """What is wrong with the files of dataset config ``cfg`` (wrappers followed), or None."""
    if not isinstance(cfg, dict):
        return None
    for inner in [cfg.get('dataset')] + list(cfg.get('datasets') or []):
        problem = dataset_problem(inner)
        if problem:
            return problem
    kind = _type_name(cfg)
    if kind not in ANNOTATED_TYPES:
        return None
    root, split = cfg.get('data_root', '') or '', cfg.get('split', '') or ''
    ann_file = cfg.get('ann_file', '') or ''
    prefix = _image_prefix(cfg)
    if kind == 'ImageNet' and split and not ann_file:
        prefix = prefix or split
        if osp.isfile(osp.join(root, 'meta', f'{split}.txt')):  # mmpretrain picks it up
            ann_file = osp.join('meta', f'{split}.txt')
    if ann_file:
        path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
        if osp.isfile(path) and _nonblank_lines(path) == 0:
            return (f"{kind}: the annotation file {path} is empty. Write one line per image "
                    f"('relative/path.JPEG label', or the path alone with with_label=False), "
                    f"or set ann_file='' so that {kind} scans the image folder.")
        return None
    folder = osp.join(root, prefix)
    labelled = cfg.get('with_label', split != 'test')
    if kind == 'ImageNet' and labelled and osp.isdir(folder):
        classes = [d for d in os.scandir(folder) if d.is_dir()]
        if len(classes) != IMAGENET_CLASSES:
            meta = osp.join(root, 'meta', f'{split or "train"}.txt')
            return (f'ImageNet: {folder} has {len(classes)} class folders and no {meta}; '
                    f'scanning the folder, mmpretrain\'s ImageNet needs all '
                    f'{IMAGENET_CLASSES}. For a subset of ImageNet, {SUBSET_FIX}; or keep '
                    f"ImageNet and list the images in {meta} (one 'wnid/name.JPEG label' "
                    'line each, labels in ImageNet\'s class order).')
    return None


def check_dataset_files(cfg) -> None:
    """Raise ValueError naming the fix when a loader's dataset files cannot work."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader_cfg = cfg.get(loader) or {}
        problem = dataset_problem(loader_cfg.get('dataset'))
        if problem:
            raise ValueError(f'{loader}.dataset: {problem}')
