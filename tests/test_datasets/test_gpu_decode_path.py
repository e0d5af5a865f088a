"""The GPU decoding path inside training (decode='gpu'), run here with the model on the CPU:
configs/famt_mae_vit-b_in1k.py shrunk, through the switch and a refresh, against the same config
on today's CPU path (same seed): the same crop records exactly, the same normalised batches
within decode_crop_batch's stated tolerance, the same refresh batches; one-sided switches stop
at start naming the fix."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.analysis.rehearsal import CONFIG
from famt_mm.compat import adapt_cfg_to_device
from famt_mm.datasets import make_imagenet_like_root
from famt_mm.recipe import famt_data_preprocessor, famt_pipeline
from tests.test_datasets.test_decode_crop import TORCH_RESIZE_MAX_TOL, TORCH_RESIZE_MEAN_TOL

IMG = 64


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_imagenet_like_root(str(tmp_path_factory.mktemp('in1k')), 8, seed=0)


def shrunk(data_root, work_dir, pipeline_gpu=False, preprocessor_gpu=False):
    """configs/famt_mae_vit-b_in1k.py with a DeiT-tiny on 64 px crops, 8 images, batch 4, two
    epochs (random masking, then a refresh and FAMT masking), decode='gpu' where asked."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({
        'model.backbone.arch': 'deit-tiny', 'model.backbone.img_size': IMG,
        'model.neck.num_patches': (IMG // 16) ** 2, 'model.neck.embed_dim': 192,
        'model.neck.decoder_embed_dim': 32, 'model.neck.decoder_depth': 1,
        'model.neck.decoder_num_heads': 2,
        'train_dataloader.dataset.data_root': data_root,
        'train_dataloader.dataset.pipeline.1.scale': IMG,
        'train_dataloader.batch_size': 4, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'train_cfg.max_epochs': 2,
        'custom_hooks.0.start_epoch': 1, 'custom_hooks.0.interval': 1,
        'custom_hooks.0.batch_size': 4, 'custom_hooks.0.num_workers': 0,
        'custom_hooks.0.bank_storage': 'inline',
        'default_hooks.checkpoint.interval': 100, 'randomness.seed': 0,
    })
    if pipeline_gpu:
        cfg.train_dataloader.dataset.pipeline = famt_pipeline(
            cfg.train_dataloader.dataset.pipeline, decode='gpu')
    if preprocessor_gpu:
        cfg.data_preprocessor.update(famt_data_preprocessor(decode='gpu'))
    cfg.work_dir, cfg.launcher = str(work_dir), 'none'
    adapt_cfg_to_device(cfg)  # as tools/train.py does here: AMP off on the CPU
    return cfg


def train_recording(cfg):
    """Train ``cfg``; every batch out of the model's data preprocessor (a torch forward
    hook): (training, normalised inputs, [(sample_idx, famt_crop, flip, flip_direction)])."""
    runner = Runner.from_cfg(cfg)
    seen = []

    def record(module, args, out):
        training = args[1] if len(args) > 1 else False
        seen.append((training, out['inputs'].detach().clone(),
                     [(s.sample_idx, s.get('famt_crop'), s.get('flip'), s.get('flip_direction'))
                      for s in out['data_samples']]))

    runner.model.data_preprocessor.register_forward_hook(record)
    runner.train()
    return runner, seen


def test_gpu_decode_trains_like_the_cpu_path(data_root, tmp_path):
    _, cpu = train_recording(shrunk(data_root, tmp_path / 'cpu'))
    runner, gpu = train_recording(shrunk(data_root, tmp_path / 'gpu', True, True))
    assert type(runner.model.data_preprocessor).__name__ == 'FAMTGPUDecodePreprocessor'
    assert runner.model.mask_generator.famt_active  # through the switch
    assert [(t, x.shape) for t, x, _ in gpu] == [(t, x.shape) for t, x, _ in cpu]
    assert [t for t, _, _ in cpu] == [True, True, False, False, True, True]  # refresh between
    std = torch.tensor(runner.cfg.data_preprocessor.std).view(1, 3, 1, 1)
    flipped = 0
    for (training, x_cpu, meta_cpu), (_, x_gpu, meta_gpu) in zip(cpu, gpu):
        assert meta_gpu == meta_cpu  # the crop records (and flips) exactly
        flipped += sum(bool(m[2]) for m in meta_cpu)
        grey = ((x_gpu - x_cpu) * std).abs()  # back to grey levels, RGB on both sides
        if not training:  # the refresh keeps its CPU loader: the same pixels
            assert grey.max() < 1e-3
            continue
        assert grey.mean(dim=(1, 2, 3)).max() < TORCH_RESIZE_MEAN_TOL, grey.mean(dim=(1, 2, 3))
        assert grey.max() <= TORCH_RESIZE_MAX_TOL + 0.5
        # channel order: swapping R and B on one side would differ by far more
        assert ((x_gpu[:, [2, 1, 0]] - x_cpu) * std).abs().mean() > 5 * grey.mean()
    assert 0 < flipped < 16  # both flip outcomes were compared


@pytest.mark.parametrize('pipeline_gpu, fix', [
    (True, "data_preprocessor = famt_data_preprocessor(decode='gpu')"),
    (False, "famt_train_dataloader(..., decode='gpu')")])
def test_the_switch_set_on_one_side_stops_at_start(data_root, tmp_path, pipeline_gpu, fix):
    runner = Runner.from_cfg(shrunk(data_root, tmp_path, pipeline_gpu, not pipeline_gpu))
    with pytest.raises(ValueError, match=fix.replace('(', r'\(').replace(')', r'\)')
                       .replace('.', r'\.')):
        runner.train()
    assert runner.iter == 0


def test_gpu_pipeline_refuses_what_it_cannot_do_on_the_device():
    mae = [dict(type='LoadImageFromFile'),
           dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
           dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
    steps = famt_pipeline(mae, decode='gpu')
    assert [s['type'] for s in steps] == ['FAMTJPEGCropRecord', 'PackInputs']
    assert steps[0]['flip_prob'] == 0.5 and {'jpeg', 'crop_xywh', 'img_shape', 'famt_crop',
                                             'flip'} <= set(steps[1]['meta_keys'])
    assert famt_pipeline(mae[:2] + mae[3:], decode='gpu')[0]['flip_prob'] is None
    with pytest.raises(ValueError, match='ColorJitter'):
        famt_pipeline(mae[:3] + [dict(type='ColorJitter', brightness=0.4)] + mae[3:],
                      decode='gpu')
    with pytest.raises(ValueError, match='bicubic'):
        famt_pipeline([mae[0], dict(mae[1], interpolation='bilinear')] + mae[2:], decode='gpu')


def test_an_undecodable_file_in_the_batch_is_named(data_root, tmp_path):
    from mmcv.transforms import Compose
    from mmpretrain.registry import MODELS, TRANSFORMS
    good = osp.join(data_root, 'train', 'class_00', '000000.JPEG')
    cut = str(tmp_path / 'cut.JPEG')  # header intact, scan data cut short (a partial copy)
    data = open(good, 'rb').read()
    open(cut, 'wb').write(data[:len(data) // 3])
    mae = [dict(type='LoadImageFromFile'),
           dict(type='RandomResizedCrop', scale=IMG, backend='pillow', interpolation='bicubic'),
           dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
    pipeline = Compose([TRANSFORMS.build(t) for t in famt_pipeline(mae, decode='gpu')])
    samples = [pipeline(dict(img_path=p, sample_idx=i))['data_samples']
               for i, p in enumerate([good, cut])]
    preprocessor = MODELS.build(dict(type='FAMTGPUDecodePreprocessor', mean=[0, 0, 0],
                                     std=[1, 1, 1]))
    with pytest.raises(OSError, match='cut.JPEG'):
        preprocessor(dict(data_samples=samples), True)
