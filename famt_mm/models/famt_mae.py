"""FAMT on top of mmpretrain's MAE: the encoder sees only the visible patches, the
decoder only the visible and the masked ones (thrown patches never enter).

One image, start to end (``FAMTMAE.loss``):

1. ``FAMTMaskGenerator.sample``: its stored weight map (full-image grid) is cut
   with the sample's crop box and flip onto the crop's patch grid, and a
   Plackett-Luce draw splits the L patches into masked / thrown / visible.
2. ``FAMTViT.forward(x, ids_visible)``: patch embed + pos embed, keep the visible
   tokens, prepend CLS, transformer, final norm. B x (1 + V) x C.
3. ``FAMTPretrainDecoder.forward(latent, ids_visible, ids_masked)``: embed, append
   one mask token per MASKED patch, add each token's own decoder position
   embedding, transformer, predict pixels for the masked tokens. B x M x p*p*3.
4. ``FAMTPretrainHead.loss``: MSE against the (norm-pix) targets of the masked
   patches, in the order of ``ids_masked``.

The weights themselves come from ``FAMTMAE.compute_famt_weights`` on whole,
un-augmented images (called by ``FAMTWeightHook``).
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.models.necks import MAEPretrainDecoder
from mmpretrain.models.selfsup import MAE, MAEViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .hook_guard import FAMTHookRequiredMixin
from .weight_terms import TermContext


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Pick tokens ``ids`` (B x K) from ``x`` (B x L x C) -> B x K x C."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def gather_patches(imgs: torch.Tensor, ids: torch.Tensor, patch_size: int,
                   layout: str = 'pqc') -> torch.Tensor:
    """Pixels of patches ``ids`` (B x K, raster order) of ``imgs`` (B x C x H x W).

    Copies only the K patches, not the whole patchified batch. ``layout`` is the
    order inside a patch vector: 'pqc' (row, column, channel) is
    ``MAEPretrainHead.patchify``'s, 'cpq' is a Conv2d kernel's ``weight.flatten(1)``.

    Returns:
        B x K x (p * p * C).
    """
    B, C, H, W = imgs.shape
    p = patch_size
    h, w = H // p, W // p
    grid = imgs.reshape(B, C, h, p, w, p)
    grid = grid.permute(0, 2, 4, 3, 5, 1) if layout == 'pqc' else grid.permute(0, 2, 4, 1, 3, 5)
    rows = torch.arange(B, device=imgs.device).unsqueeze(1)
    patches = grid[rows, torch.div(ids, w, rounding_mode='floor'), ids % w]  # B x K x ...
    return patches.reshape(B, ids.shape[1], -1)


@MODELS.register_module()
class FAMTViT(MAEViT):
    """MAE's ViT encoder that takes the visible patch ids from outside.

    ``forward(x, ids_visible=None, mask=True)``: with ``ids_visible`` (B x V) it
    encodes only those patches; without, it behaves exactly like ``MAEViT``
    (``mask=None`` gives plain features for evaluation).
    """

    def forward(self, x: torch.Tensor, mask: Optional[bool] = True,
                ids_visible: Optional[torch.Tensor] = None):
        if ids_visible is None:
            return super().forward(x, mask)
        x = self.embed_patches(x, ids_visible) + self.pos_embed[0, 1:][ids_visible]
        cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for layer in self.layers:
            x = layer(x)
        return self.norm1(x)

    def embed_patches(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Patch embeddings of patches ``ids`` (B x K) only -> B x K x C.

        MAE's patch embedding is a Conv2d with kernel = stride = patch size, i.e. one
        linear map per patch: applied to the K gathered patches it gives the same
        values as embedding all L patches and gathering K, for K / L of the work
        (the full Conv2d, forward and weight gradient, costs more than the encoder's
        transformer layers on 1 + V tokens on CPU). Other patch embeddings (overlap,
        padding, a norm) take the general path.
        """
        embed, proj = self.patch_embed, self.patch_embed.projection
        p = proj.kernel_size[0]
        if (isinstance(proj, torch.nn.Conv2d) and embed.norm is None
                and proj.kernel_size == (p, p) and proj.stride == (p, p)
                and proj.padding == (0, 0) and proj.dilation == (1, 1) and proj.groups == 1
                and x.shape[-2] % p == 0 and x.shape[-1] % p == 0):
            patches = gather_patches(x, ids, p, layout='cpq')
            return F.linear(patches, proj.weight.flatten(1), proj.bias)
        return gather_tokens(embed(x)[0], ids)

    @torch.no_grad()
    def forward_famt_terms(self, x: torch.Tensor, column_mean: bool = False
                           ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """What the FAMT weights are computed from, on whole unmasked images.

        Every block but the last runs as usual (fused attention); in the last
        one only the CLS query's attention row is computed explicitly.

        Returns:
            attn_cls: B x H x L, softmax attention of the CLS query to each patch.
            attn_full: B x H x N x N full attention (only with ``column_mean``).
            tokens: B x L x C, the last block's patch tokens before the final norm.
        """
        B = x.shape[0]
        x = self.patch_embed(x)[0] + self.pos_embed[:, 1:, :]
        cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for layer in self.layers[:-1]:
            x = layer(x)
        last = self.layers[-1]
        attn = last.attn
        N = x.shape[1]
        qkv = attn.qkv(last.ln1(x)).reshape(B, N, 3, attn.num_heads, attn.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each B x H x N x d
        out = attn.scaled_dot_product_attention(q, k, v)
        scale = attn.head_dims ** -0.5
        # the weights' attention in float32 even under AMP (fp16 / bf16 logits shift them)
        with torch.autocast(x.device.type, enabled=False):
            qf, kt = q.float() * scale, k.float().transpose(-2, -1)
            attn_cls = (qf[:, :, :1] @ kt).softmax(-1)[:, :, 0, 1:]  # B x H x L
            attn_full = (qf @ kt).softmax(-1) if column_mean else None
        out = attn.gamma1(attn.proj(out.transpose(1, 2).reshape(B, N, attn.embed_dims)))
        if attn.v_shortcut:
            out = v.squeeze(1) + out
        x = x + out
        x = last.ffn(last.ln2(x), identity=x)
        return attn_cls, attn_full, x[:, 1:]


@MODELS.register_module()
class FAMTPretrainDecoder(MAEPretrainDecoder):
    """MAE decoder over the visible + masked tokens only (no thrown ones).

    ``forward(x, ids_visible, ids_masked)``: x is the encoder output
    B x (1 + V) x C; returns predictions B x M x (p*p*3) for the masked patches,
    in the order of ``ids_masked``. The decoder runs on 1 + V + M tokens.
    Called as ``forward(x, ids_restore)`` it is mmpretrain's MAE decoder.
    """

    def forward(self, x: torch.Tensor, ids_visible: torch.Tensor,
                ids_masked: Optional[torch.Tensor] = None) -> torch.Tensor:
        if ids_masked is None:  # mmpretrain signature: (x, ids_restore)
            return super().forward(x, ids_visible)
        x = self.decoder_embed(x)
        B, n_keep, D = x.shape
        n_mask = ids_masked.shape[1]
        x = torch.cat([x, self.mask_token.expand(B, n_mask, D)], dim=1)
        # Position embedding of each token's own patch (index 0 is CLS).
        pos_ids = torch.cat([ids_visible.new_zeros(B, 1), ids_visible + 1, ids_masked + 1], dim=1)
        x = x + gather_tokens(self.decoder_pos_embed.expand(B, -1, -1), pos_ids)
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x[:, n_keep:])  # norm + predict only what carries the loss
        return self.decoder_pred(x)


@MODELS.register_module()
class FAMTPretrainHead(MAEPretrainHead):
    """MAE's pixel head with the loss over the masked patches given by id.

    ``loss(pred, inputs, ids_masked)``: pred B x M x (p*p*3), inputs B x 3 x H x W.
    """

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             ids_masked: torch.Tensor) -> torch.Tensor:
        if ids_masked.dtype != torch.long:  # mmpretrain call: (pred, target, mask)
            return super().loss(pred, target, ids_masked)
        target = self.masked_target(target, ids_masked)
        return self.loss_module(pred, target, pred.new_ones(pred.shape[:2]))

    def masked_target(self, imgs: torch.Tensor, ids_masked: torch.Tensor) -> torch.Tensor:
        """``construct_target(imgs)`` of the patches ``ids_masked`` only -> B x M x (p*p*3).

        Patchify and norm-pix act on each patch alone, so gathering the M masked
        patches first gives the same target as MAE's for the L patches, then gathered.
        """
        target = gather_patches(imgs, ids_masked, self.patch_size, layout='pqc')
        if self.norm_pix:  # as MAEPretrainHead.construct_target
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        return target


@MODELS.register_module()
class FAMTMAE(FAMTHookRequiredMixin, MAE):
    """MAE with FAMT masking and throwing.

    Implements the FAMT model interface (famt_mm/models/famt_model.py): ``mask_generator``,
    ``grid_hw`` (the patch grid), ``input_hw`` (``grid_hw`` x patch size) and
    ``compute_famt_weights``.

    Args:
        mask_generator (dict): config of ``FAMTMaskGenerator``.
        backbone / neck / head: ``FAMTViT`` / ``FAMTPretrainDecoder`` /
            ``FAMTPretrainHead`` (as in mmpretrain's MAE configs).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='FAMTMaskGenerator'), **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.mask_generator = MODELS.build(mask_generator)
        # The FAMT model interface (famt_mm/models/famt_model.py): masking grid = patch grid.
        patch_res = self.backbone.patch_resolution
        self.grid_hw = (int(patch_res[0]), int(patch_res[1]))
        ps = self.backbone.patch_embed.projection.kernel_size
        self.input_hw = (self.grid_hw[0] * ps[0], self.grid_hw[1] * ps[1])
        img_size = tuple(getattr(self.backbone, 'img_size', self.input_hw))
        if img_size != self.input_hw:
            raise ValueError(
                f'FAMTMAE: the backbone input size {img_size} is not divisible by the patch '
                f'size {tuple(ps)} (the patch embedding pads it to a {self.grid_hw} grid, so '
                'weight maps would not match the image); use a multiple of the patch size')

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        ids_masked, _, ids_visible = self.mask_generator.sample(
            data_samples, self.grid_hw, inputs.shape[0], inputs.device)
        latent = self.backbone(inputs, ids_visible=ids_visible)
        pred = self.neck(latent, ids_visible, ids_masked)
        return dict(loss=self.head.loss(pred, inputs, ids_masked))

    @torch.no_grad()
    def famt_term_context(self, inputs: torch.Tensor) -> TermContext:
        """What the weight terms are computed from, for whole images (eval mode)."""
        was_training = self.training
        self.eval()
        ctx = vit_term_context(self.backbone, inputs, self.mask_generator)
        self.train(was_training)
        return ctx

    @torch.no_grad()
    def compute_famt_weights(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """FAMT sampling weights of whole, un-augmented, normalised images.

        Returns weights B x h x w (float32, sanitised) and the fallback flags B
        (maps that were NaN / inf / all zero and became uniform).
        """
        weights, fallback = self.mask_generator.weighting.weights(
            self.famt_term_context(inputs))
        return weights.view(-1, *self.grid_hw), fallback


def vit_term_context(backbone: MAEViT, inputs: torch.Tensor, generator) -> TermContext:
    """The ``TermContext`` of a (FAMT or plain MAE) ViT encoder for whole images.

    Computes the full last-block attention and keeps the images only when a term of
    ``generator`` (a ``FAMTMaskGenerator``) needs them.
    """
    # forward_famt_terms only uses MAEViT's modules: it serves a plain MAEViT too.
    attn_cls, attn_full, tokens = FAMTViT.forward_famt_terms(
        backbone, inputs, column_mean=generator.weighting.needs('attn_full'))
    return TermContext(attn_cls=attn_cls, tokens=tokens,
                       grid_hw=tuple(int(g) for g in backbone.patch_resolution),
                       patch_size=tuple(backbone.patch_embed.projection.kernel_size),
                       images=inputs if generator.weighting.needs('images') else None,
                       attn_full=attn_full)


__all__ = ['FAMTViT', 'FAMTPretrainDecoder', 'FAMTPretrainHead', 'FAMTMAE', 'gather_tokens',
           'gather_patches', 'vit_term_context']

