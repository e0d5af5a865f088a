"""Draw what FAMT masks: image, each configured weight term, combined weights,
masked / thrown / visible patches and the reconstruction, one row per image.

    python tools/visualization/vis_famt_masks.py CONFIG [CHECKPOINT] \
        [--indices 0 1 2 3 | --images a.jpg b.png] [--out-dir DIR] [--seed 0]

CONFIG is a FAMT pre-training config of any FAMT algorithm (FAMTMAE, FAMTSimMIM, ...: the
contract of famt_mm/models/famt_algorithm.py; drawn with the FAMT split, computed on the whole
image exactly as the refresh pass of training does, and its reconstruction where its target
is pixels) or a plain mmpretrain MAE config (its own random masking and reconstruction are
drawn, with the FAMT terms its encoder would give). Works on CPU. Writes DIR/famt_masks.png
(or DIR/mae_masks.png for a plain MAE).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise FAMT (or MAE) masking')
    parser.add_argument('config', help='FAMT or MAE pre-training config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='pre-training checkpoint (omit to draw an untrained model)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--indices', type=int, nargs='+', default=[0, 1, 2, 3],
                       help='training-set indices to draw')
    group.add_argument('--images', nargs='+', help='image files to draw instead')
    parser.add_argument('--out-dir', default='work_dirs/famt_vis')
    parser.add_argument('--out-name', default=None,
                        help='file name (default famt_masks.png / mae_masks.png)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the masking draw')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda '
                        'when available)')
    return parser.parse_args(argv)


def build_model(cfg, checkpoint, device):
    """The config's model (data preprocessor included) with the checkpoint's weights."""
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:  # as the Runner does
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')  # init_weights lists every parameter at INFO
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    else:
        try:
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
        except RuntimeError:  # mmengine lists every key; say which architectures instead
            from famt_mm.transfer.arch import architecture_mismatch
            from famt_mm.transfer.checkpoint import extract_state_dict, load_checkpoint_file
            arch = architecture_mismatch(
                extract_state_dict(load_checkpoint_file(checkpoint), checkpoint),
                model.state_dict())
            if arch is None:
                raise
            raise SystemExit(f'error: {checkpoint} does not fit the config: {arch}; pass '
                             'the config the checkpoint was trained with') from None
    from mmpretrain.models.selfsup import MAE
    from famt_mm.models.famt_algorithm import FAMT_ALGORITHMS, is_famt_model
    if not (is_famt_model(model) or isinstance(model, MAE)):
        raise SystemExit(f'error: {type(model).__name__} is neither a FAMT algorithm '
                         f'({", ".join(sorted(FAMT_ALGORITHMS))}) nor mmpretrain\'s MAE: pass '
                         'a FAMT (or plain MAE) pre-training config')
    return model.to(device).eval()


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import famt_mm  # noqa: F401  (registers the modules; checkpoints read as data)
    from famt_mm.visualization import (compose_famt_grid, famt_panels, input_hw,
                                       load_whole_images, preprocessor_mean_std, recon_rgb,
                                       save_famt_grid, to_rgb_image, whole_image_pipeline)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg, args.checkpoint, device)
    ds_cfg = cfg.train_dataloader.dataset
    pipeline = whole_image_pipeline(ds_cfg.get('pipeline', []), input_hw(model))
    if args.images:
        missing = [p for p in args.images if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(f'--images: {missing} do not exist')
        # Files load as BGR; a preprocessor without to_rgb expects RGB already.
        to_rgb = getattr(model.data_preprocessor, '_channel_conversion', False)
        inputs, names = load_whole_images(model, pipeline, files=args.images,
                                          flip_channels=not to_rgb)
    else:
        from mmpretrain.registry import DATASETS
        dataset = DATASETS.build(ds_cfg)
        inputs, names = load_whole_images(model, pipeline, dataset=dataset,
                                          indices=args.indices)
    generator = torch.Generator(device=inputs.device).manual_seed(args.seed)
    panels = famt_panels(model, inputs, generator=generator, seed=args.seed)
    mean, std = preprocessor_mean_std(model)
    # The data preprocessor already made the inputs RGB.
    grid = compose_famt_grid(to_rgb_image(inputs, mean, std), panels,
                             recon_images=recon_rgb(panels, mean, std),
                             names=names)
    os.makedirs(args.out_dir, exist_ok=True)
    name = args.out_name or ('famt_masks.png' if panels['famt'] else 'mae_masks.png')
    out = save_famt_grid(grid, osp.join(args.out_dir, name))
    print(f'wrote {out} ({grid.shape[1]} x {grid.shape[0]})')
    return out


if __name__ == '__main__':
    main()
