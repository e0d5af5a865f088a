"""Time famt_mm's refresh (weight) pass against the public FAMT reference's, side by side.

    python tools/analysis/benchmark_refresh.py [--images 64] [--batch 16] [--repeats 3]
        [--threads 1] [--precision fp32|bf16|fp16] [--no-reference] [--out result.json]

famt_mm: ``FAMTMAE.compute_famt_weights`` + ``quantize_weights`` of the ViT-B/16 model of
``configs/famt_mae_vit-b_in1k.py`` (what ``compute_shard_maps`` runs per batch, data loader
and data preprocessor left out). The reference: the weight pass of jsrdcht/famt
(``util/misc.py`` ``update_mask``, ``models_mae.py`` ``forward_encoder_test``), re-written
here from its description: timm ViT-B/16 blocks (fused attention) but the last, whose full
N x N attention is computed explicitly, then per image the CLS row weighted by the patches'
mean attention to CLS plus the patch-to-patch column mean weighted by CLS-to-CLS, head
mean; no frequency term. Needs ``timm`` (a venv with ``--system-site-packages`` is enough);
``--no-reference`` times famt_mm alone.

Both get the same random normalised 224 px images; their passes alternate so that a load
change on a shared machine hits both alike. Reported: images/s of each pass (median over
``--repeats``), and famt_mm's over the reference's.
"""
import argparse
import json
import os.path as osp
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from functools import partial

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=3, help='timed passes of each')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--precision', choices=sorted(PRECISIONS), default='fp32',
                        help='autocast dtype of both passes (CPU autocast for bf16 / fp16)')
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'famt_mae_vit-b_in1k.py'))
    parser.add_argument('--no-reference', action='store_true', help='famt_mm only (no timm)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    return parser.parse_args(argv)


def build_famt(config, device):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    import famt_mm  # noqa: F401  (registers FAMTMAE & co.)
    cfg = Config.fromfile(config).model
    model = MODELS.build(cfg)
    model.init_weights()
    return model.to(device).eval()


def build_reference(famt, device):
    """timm's ViT-B/16 with famt_mm's encoder weights (same numbers in, same work)."""
    import timm.models.vision_transformer as tvit
    enc = famt.backbone
    vit = tvit.VisionTransformer(
        img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4,
        qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=0)
    with torch.no_grad():
        vit.patch_embed.proj.load_state_dict(enc.patch_embed.projection.state_dict())
        vit.pos_embed.copy_(enc.pos_embed)
        vit.cls_token.copy_(enc.cls_token)
        for blk, layer in zip(vit.blocks, enc.layers):
            blk.norm1.load_state_dict(layer.ln1.state_dict())
            blk.attn.qkv.load_state_dict(layer.attn.qkv.state_dict())
            blk.attn.proj.load_state_dict(layer.attn.proj.state_dict())
            blk.norm2.load_state_dict(layer.ln2.state_dict())
            blk.mlp.fc1.load_state_dict(layer.ffn.layers[0][0].state_dict())
            blk.mlp.fc2.load_state_dict(layer.ffn.layers[1].state_dict())
    return vit.to(device).eval()


@torch.no_grad()
def reference_weights(vit, x):
    """The reference's weight maps, B x 14 x 14 (float32), and the last block's tokens."""
    tokens = vit.patch_embed(x) + vit.pos_embed[:, 1:]
    cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
    tokens = torch.cat((cls, tokens), dim=1)
    for blk in vit.blocks[:-1]:
        tokens = blk(tokens)
    last = vit.blocks[-1]
    attn_mod = last.attn
    B, N, C = tokens.shape
    qkv = attn_mod.qkv(last.norm1(tokens)).reshape(B, N, 3, attn_mod.num_heads, -1)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    attn = ((q * attn_mod.scale) @ k.transpose(-2, -1)).softmax(-1)  # B x H x N x N
    out = attn_mod.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
    tokens = tokens + out
    tokens = tokens + last.mlp(last.norm2(tokens))
    to_cls = attn[:, :, 1:, 0].mean(-1, keepdim=True)  # B x H x 1
    cls_term = (attn[:, :, 0, 1:] * to_cls).mean(1)
    column = (attn[:, :, 1:, 1:].mean(2) * attn[:, :, :1, 0]).mean(1)
    side = int(round((N - 1) ** 0.5))
    return (cls_term + column).float().reshape(B, side, side), tokens


@torch.no_grad()
def famt_weights(model, x, bank_dtype='float16'):
    from famt_mm.models.famt_weights import quantize_weights
    weights, _ = model.compute_famt_weights(x)
    return quantize_weights(weights, bank_dtype)


def timed_batch(fn, x, device, precision):
    """(wall, CPU) seconds of one batch; CPU seconds of this process are what a busy shared
    machine moves least (one thread: CPU seconds ~ the wall time it would take alone)."""
    ctx = torch.autocast(device.type, dtype=PRECISIONS[precision]) \
        if PRECISIONS[precision] is not None else nullcontext()
    t0, c0 = time.perf_counter(), time.process_time()
    with ctx:
        fn(x)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    famt = build_famt(args.config, device)
    passes = {'famt_mm': partial(famt_weights, famt)}
    if not args.no_reference:
        vit = build_reference(famt, device)
        x = torch.randn(2, 3, 224, 224, device=device)
        ref_tokens = reference_weights(vit, x)[1]
        ours = famt.famt_context(x).tokens
        gap = float((ref_tokens[:, 1:] - ours).abs().max())
        if gap > 1e-3:  # same weights, same images: the two encoders must agree
            raise RuntimeError(f'reference and famt_mm encoders differ by {gap}')
        passes['reference'] = lambda x: reference_weights(vit, x)[0]
    g = torch.Generator().manual_seed(args.seed)
    batches = [torch.randn(min(args.batch, args.images - i), 3, 224, 224, generator=g).to(device)
               for i in range(0, args.images, args.batch)]
    for fn in passes.values():  # warm-up: one batch each
        timed_batch(fn, batches[0], device, args.precision)
    wall = {name: [0.0] * args.repeats for name in passes}
    cpu = {name: [0.0] * args.repeats for name in passes}
    for r in range(args.repeats):
        for x in batches:  # batch by batch in turns: a load change hits both alike
            for name, fn in passes.items():
                w, c = timed_batch(fn, x, device, args.precision)
                wall[name][r] += w
                cpu[name][r] += c
    result = dict(images=args.images, batch=args.batch, threads=args.threads,
                  precision=args.precision, device=str(device),
                  cpu=platform.processor() or platform.machine(), torch=torch.__version__,
                  wall_seconds=wall, cpu_seconds=cpu,
                  images_per_s={n: args.images / statistics.median(s) for n, s in wall.items()},
                  images_per_cpu_s={n: args.images / statistics.median(s)
                                    for n, s in cpu.items()})
    if 'reference' in passes:
        ips = result['images_per_s']
        result['famt_mm_vs_reference'] = ips['famt_mm'] / ips['reference']
        ipc = result['images_per_cpu_s']
        result['famt_mm_vs_reference_cpu'] = ipc['famt_mm'] / ipc['reference']
    return result


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    for name, ips in result['images_per_s'].items():
        print(f"{name}: {ips:.2f} images/s wall, {result['images_per_cpu_s'][name]:.2f} "
              f"images per CPU second (passes of {result['images']} images, batch "
              f"{result['batch']}, {result['precision']}, {result['threads']} thread(s); wall "
              f"{', '.join(f'{s:.1f}' for s in result['wall_seconds'][name])} s, CPU "
              f"{', '.join(f'{s:.1f}' for s in result['cpu_seconds'][name])} s)")
    if 'famt_mm_vs_reference' in result:
        print(f"famt_mm / reference: {result['famt_mm_vs_reference']:.3f} by wall time, "
              f"{result['famt_mm_vs_reference_cpu']:.3f} by CPU time")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
