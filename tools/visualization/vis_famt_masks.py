"""Draw what FAMT masks: image, attention term, frequency term, combined weights,
masked / thrown / visible patches and the reconstruction, one row per image.

    python tools/visualization/vis_famt_masks.py CONFIG CHECKPOINT \
        [--indices 0 1 2 3 | --images a.jpg b.png] [--out-dir DIR] [--seed 0]

Works on CPU. Weights are computed on the whole image with the checkpoint's
encoder, exactly as the refresh pass of training does.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise FAMT masking')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='FAMT checkpoint (omit to draw an untrained model)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--indices', type=int, nargs='+', default=[0, 1, 2, 3],
                       help='training-set indices to draw')
    group.add_argument('--images', nargs='+', help='image files to draw instead')
    parser.add_argument('--out-dir', default='work_dirs/famt_vis')
    parser.add_argument('--seed', type=int, default=0, help='seed of the masking draw')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def build_model(cfg, checkpoint, device):
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:  # as the Runner does
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    if not hasattr(model, 'compute_famt_weights'):
        raise TypeError(f'{type(model).__name__} is not a FAMT model (FAMTMAE)')
    return model.to(device).eval()


def load_batch(cfg, model, args):
    """Whole images resized to the input size, through the data preprocessor."""
    from mmpretrain.registry import DATASETS, TRANSFORMS
    from mmengine.dataset import Compose
    ps = model.backbone.patch_embed.projection.kernel_size
    size = (model.grid_hw[1] * ps[1], model.grid_hw[0] * ps[0])
    resize = [dict(type='Resize', scale=size, backend='pillow', interpolation='bicubic'),
              dict(type='PackInputs', meta_keys=('sample_idx', 'img_path'))]
    if args.images:
        pipeline = Compose([TRANSFORMS.build(t) for t in
                            [dict(type='LoadImageFromFile')] + resize])
        items = [pipeline(dict(img_path=p, sample_idx=i)) for i, p in enumerate(args.images)]
        names = [osp.basename(p) for p in args.images]
    else:
        ds_cfg = cfg.train_dataloader.dataset.copy()
        loading = [t for t in ds_cfg.get('pipeline', []) if t['type'].startswith('Load')]
        ds_cfg['pipeline'] = loading + resize
        dataset = DATASETS.build(ds_cfg)
        items = [dataset[i] for i in args.indices]
        names = [f'#{i}' for i in args.indices]
    data = model.data_preprocessor(default_collate(items), False)
    return data['inputs'], names


def main(argv=None):
    args = parse_args(argv)
    import famt_mm  # noqa: F401  (registers the modules)
    from famt_mm.visualization import draw_famt_grid, famt_panels, to_rgb_image
    cfg = Config.fromfile(args.config)
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = build_model(cfg, args.checkpoint, args.device)
    inputs, names = load_batch(cfg, model, args)
    generator = torch.Generator(device=inputs.device).manual_seed(args.seed)
    panels = famt_panels(model, inputs, generator=generator)
    pre = cfg.get('data_preprocessor', cfg.model.get('data_preprocessor', {}))
    mean, std = pre.get('mean', [0, 0, 0]), pre.get('std', [1, 1, 1])
    # The preprocessor turned BGR into RGB (to_rgb): inputs are RGB already.
    images = to_rgb_image(inputs, mean, std)
    recon = to_rgb_image(panels['recon'], mean, std)
    os.makedirs(args.out_dir, exist_ok=True)
    out = draw_famt_grid(images, panels, osp.join(args.out_dir, 'famt_masks.png'),
                         recon_images=recon, titles=names)
    print(f'wrote {out}')
    return out


if __name__ == '__main__':
    main()
