"""Convert a FAMT (or MAE) pre-training checkpoint into backbone weights for a
downstream library: exactly the keys the target backbone expects, in a
tensor-only file (``torch.load(..., weights_only=True)`` reads it).

    python tools/model_converters/famt2target.py SRC DST --target mmdet \
        [--img-size 1024] [--arch base] [--patch-size 16]

``--target``: any target registered in famt_mm/transfer/convert.py
(mmpretrain, mmdet, mmseg). SRC: a FAMT / MAE pre-training checkpoint of this
project (``epoch_N.pth``) or an official MAE release (mae_pretrain_vit_base.pth).
Converted files, files without a ViT encoder and non-checkpoints are refused
with the reason; SRC is read as data (README, "Security").
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def add_arguments(parser):
    """The converter's options; the targets come from famt_mm.transfer.convert."""
    from famt_mm.transfer.convert import conversion_targets
    parser.add_argument('src', help='FAMT / MAE pre-training checkpoint')
    parser.add_argument('dst', help='output file (backbone weights only)')
    parser.add_argument('--target', required=True, choices=conversion_targets(),
                        help='the library whose backbone loads the file')
    parser.add_argument('--img-size', type=int, default=None,
                        help='resize pos_embed to this input size now (default: keep the '
                        "pre-training grid; StrictPretrained resizes it when loading)")
    parser.add_argument('--arch', default=None,
                        help="refuse a checkpoint that is not this mmpretrain ViT arch "
                        "(e.g. 'base', 'deit-small')")
    parser.add_argument('--patch-size', type=int, default=None,
                        help='refuse a checkpoint with another patch size')
    return parser


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    return add_arguments(parser).parse_args(argv)


def expected_arch(arch, patch_size):
    expect = {}
    if arch is not None:
        from mmpretrain.models.backbones import VisionTransformer
        zoo = VisionTransformer.arch_zoo  # one entry per name ('b', 'base', ...)
        if arch not in zoo:
            raise SystemExit(f'--arch {arch!r} is not an mmpretrain ViT arch: {sorted(zoo)}')
        expect.update({k: zoo[arch][k] for k in ('embed_dims', 'num_layers',
                                                 'feedforward_channels')})
    if patch_size is not None:
        expect['patch_size'] = patch_size
    return expect


def run(args):
    """Convert as ``args`` (src, dst, target, img_size, arch, patch_size) say."""
    from famt_mm.checkpoint_io import UnsafeCheckpointError
    from famt_mm.transfer.convert import convert_checkpoint
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise SystemExit('refusing to overwrite the source checkpoint')
    if osp.dirname(osp.abspath(args.dst)):
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    try:
        info = convert_checkpoint(args.src, args.dst, args.target, img_size=args.img_size,
                                  expect_arch=expected_arch(args.arch, args.patch_size))
    except (ValueError, FileNotFoundError, UnsafeCheckpointError) as err:  # say why, no traceback
        raise SystemExit(f'error: {err}')
    print(f"{args.src} -> {args.dst} for {info['target']}: ViT {info['embed_dims']}-d, "
          f"{info['num_layers']} layers, patch {info['patch_size']}, pre-training grid "
          f"{info['grid']}x{info['grid']}, {info['num_tensors']} tensors")
    return info


def main(argv=None):
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
