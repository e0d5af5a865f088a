"""A plain ViT with a simple feature pyramid for mmdet (ViTDet, Li et al. 2022).

The mmdet wheel has no ViTDet (it lives in mmdetection's projects/ folder),
so these are registered into mmdet's MODELS here; configs import this module
with ``custom_imports=dict(imports=['famt_mm', 'famt_mm.transfer.vitdet'])``.

``ViTDetBackbone``: the pre-trained ViT (mmpretrain key names, see
famt_mm.transfer.convert), run at detection resolution: absolute position
embeddings resized to the input grid, window attention in most blocks and
global attention in a few, decomposed relative position biases (new, zero
initialised). One output, B x C x H/p x W/p.

``SimpleFeaturePyramid``: that single map -> strides p/4 .. p*2 by
deconvolution / identity / max-pooling, each followed by a 1x1 and a 3x3
conv with LayerNorm, plus extra max-pooled levels (P6).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmcv.cnn.bricks.transformer import FFN, PatchEmbed
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_


def window_partition(x: torch.Tensor, window: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """B x H x W x C -> (B * nW) x window x window x C, zero-padding H, W up."""
    B, H, W, C = x.shape
    pad_h, pad_w = (-H) % window, (-W) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, C), (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of ``window_partition``: -> B x H x W x C (padding removed)."""
    Hp, Wp = padded_hw
    B = windows.shape[0] // (Hp * Wp // window // window)
    x = windows.view(B, Hp // window, Wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)
    return x[:, :hw[0], :hw[1]].contiguous()


def relative_positions(q_size: int, k_size: int, table: torch.Tensor) -> torch.Tensor:
    """Embedding of every (query, key) offset along one axis: q_size x k_size x C.

    ``table`` (2 * size - 1) x C is linearly resampled when the sizes differ.
    """
    span = 2 * max(q_size, k_size) - 1
    if table.shape[0] != span:
        table = F.interpolate(table.t().unsqueeze(0), size=span, mode='linear',
                              align_corners=False).squeeze(0).t()
    q = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q - k) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[offsets.long()]


def decomposed_rel_pos_bias(q: torch.Tensor, table_h: torch.Tensor, table_w: torch.Tensor,
                            hw: Tuple[int, int]) -> torch.Tensor:
    """Attention bias from separate row / column offsets (MViTv2 / ViTDet).

    q: B x heads x (H*W) x C (unscaled queries) -> B x heads x (H*W) x (H*W).
    """
    H, W = hw
    B, heads, _, C = q.shape
    rh = relative_positions(H, H, table_h)  # H x H x C
    rw = relative_positions(W, W, table_w)  # W x W x C
    r_q = q.reshape(B, heads, H, W, C)
    bias_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, rh)
    bias_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, rw)
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # B x n x H x W x H x W
    return bias.reshape(B, heads, H * W, H * W)


class RelPosAttention(nn.Module):
    """Multi-head self-attention on a B x H x W x C map, optional relative biases.

    Keys ``qkv``, ``proj`` as mmpretrain's ViT; ``rel_pos_h`` / ``rel_pos_w``
    ((2 * size - 1) x head_dims, zeros) when ``use_rel_pos``.
    """

    def __init__(self, embed_dims: int, num_heads: int, input_size: Tuple[int, int],
                 use_rel_pos: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            head_dims = embed_dims // num_heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dims))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each B x heads x N x head_dims
        bias = None
        if self.use_rel_pos:
            bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (H, W)).to(q.dtype)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(x.transpose(1, 2).reshape(B, H, W, C))


class ViTDetBlock(BaseModule):
    """Pre-norm transformer block on B x H x W x C; windowed when ``window_size`` > 0."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 window_size: int, grid: Tuple[int, int], use_rel_pos: bool = True,
                 drop_path_rate: float = 0., norm_cfg: dict = dict(type='LN', eps=1e-6)):
        super().__init__()
        self.window_size = window_size
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)[1]
        size = (window_size, window_size) if window_size > 0 else grid
        self.attn = RelPosAttention(embed_dims, num_heads, size, use_rel_pos)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                       num_fcs=2, ffn_drop=0., act_cfg=dict(type='GELU'), add_identity=True,
                       dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.ln1(x)
        if self.window_size > 0:
            H, W = x.shape[1:3]
            x, padded = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(x), self.window_size, padded, (H, W))
        else:
            x = self.attn(x)
        x = shortcut + self.drop_path(x)
        return self.ffn(self.ln2(x), identity=x)


@MODELS.register_module()
class ViTDetBackbone(BaseModule):
    """Plain ViT backbone for detection (ViTDet).

    Args:
        arch (str | dict): an mmpretrain ViT arch name ('base', 'large', ...)
            or dict(embed_dims, num_layers, num_heads, feedforward_channels).
        img_size (int): training input size (after padding), e.g. 1024.
        patch_size (int): patch size of the pre-trained ViT.
        window_size (int): attention window (in patches) of windowed blocks.
        window_block_indexes (Sequence[int]): blocks with window attention;
            the others attend globally.
        use_rel_pos (bool): decomposed relative position biases.
        drop_path_rate (float): stochastic depth, linear over the blocks.
        norm_cfg (dict): norm of the blocks.
        init_cfg (dict): e.g. dict(type='StrictPretrained', checkpoint=...,
            allowed_missing=['layers.*.attn.rel_pos_*']).

    Forward: B x 3 x H x W -> (B x C x H/p x W/p,).
    """

    def __init__(self, arch: Union[str, dict] = 'base', img_size: int = 1024,
                 patch_size: int = 16, window_size: int = 14,
                 window_block_indexes: Sequence[int] = (0, 1, 3, 4, 6, 7, 9, 10),
                 use_rel_pos: bool = True, drop_path_rate: float = 0.1,
                 norm_cfg: dict = dict(type='LN', eps=1e-6), init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            from mmpretrain.models.backbones import VisionTransformer
            zoo = VisionTransformer.arch_zoo  # one entry per name ('b', 'base', ...)
            if arch not in zoo:
                raise KeyError(f'unknown ViT arch {arch!r}; choose from {sorted(zoo)}')
            arch = zoo[arch]
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.patch_embed = PatchEmbed(in_channels=3, embed_dims=self.embed_dims,
                                      conv_type='Conv2d', kernel_size=patch_size,
                                      stride=patch_size, input_size=img_size)
        self.patch_grid = self.patch_embed.init_out_size
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.patch_grid[0] * self.patch_grid[1], self.embed_dims))
        rates = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.layers = nn.ModuleList([
            ViTDetBlock(self.embed_dims, arch['num_heads'], arch['feedforward_channels'],
                        window_size if i in window_block_indexes else 0, self.patch_grid,
                        use_rel_pos, rates[i], norm_cfg)
            for i in range(self.num_layers)])

    def init_weights(self):
        # from-scratch values first; an init_cfg (pre-trained weights) overrides them
        trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        super().init_weights()

    def _pos_embed_for(self, hw: Tuple[int, int]) -> torch.Tensor:
        if tuple(hw) == tuple(self.patch_grid):
            return self.pos_embed
        grid = self.pos_embed.reshape(1, *self.patch_grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=hw, mode='bicubic', align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, hw[0] * hw[1], -1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        x, hw = self.patch_embed(x)  # B x N x C
        x = (x + self._pos_embed_for(hw)).reshape(x.shape[0], hw[0], hw[1], -1)
        for layer in self.layers:
            x = layer(x)
        return (x.permute(0, 3, 1, 2).contiguous(),)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's neck: one stride-p map -> a pyramid, no top-down path.

    Args:
        in_channels (int): channels of the backbone map (embed dims).
        out_channels (int): channels of every output level.
        scale_factors (Sequence[float]): powers of two; 4, 2, 1, 0.5 on a
            stride-16 map give strides 4, 8, 16, 32.
        num_outs (int): output levels; levels beyond ``scale_factors`` are
            stride-2 max-pools of the last one (P6).
        norm_cfg (dict): norm of the convs (a channels-first LayerNorm).

    Forward: (B x C x h x w, ...) -> tuple of B x out_channels x (h*s) x (w*s).
    """

    def __init__(self, in_channels: int = 768, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5), num_outs: int = 5,
                 norm_cfg: dict = dict(type='mmpretrain.LN2d', eps=1e-6),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs {num_outs} < {len(scale_factors)} scale factors')
        self.num_outs = num_outs
        self.stages = nn.ModuleList()
        for scale in scale_factors:
            steps = math.log2(scale)
            if steps != int(steps):
                raise ValueError(f'scale factor {scale} is not a power of two')
            layers, dims = [], in_channels
            for i in range(int(steps)):  # upsample: deconvs with LN + GELU between
                if i:
                    layers += [build_norm_layer(norm_cfg, dims)[1], nn.GELU()]
                layers.append(nn.ConvTranspose2d(dims, dims // 2, kernel_size=2, stride=2))
                dims //= 2
            if steps < 0:
                layers.append(nn.MaxPool2d(kernel_size=2 ** int(-steps)))
            layers += [
                ConvModule(dims, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None),
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                           act_cfg=None)]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        x = inputs[-1]
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
