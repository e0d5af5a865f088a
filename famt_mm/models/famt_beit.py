"""FAMT on mmpretrain's BEiT (v1 and v2, one ``BEiT`` class in mmpretrain): the mask-token
family. Masked patches enter the encoder as the mask token, visible ones as their patch
embedding, thrown ones not at all; the loss is the tokenizer's token at the masked patches
only (docs/design.md, "Algorithms").

FAMT's masking replaces BEiT's block-wise masking (``BEiTMaskGenerator``) in both phases:
before the switch ``FAMTMaskGenerator`` draws uniform patch sets (``random_mask_ratio``, and
``random_throw_ratio`` if set), not blocks. A block-wise random warm-up would be a later
option.

One step (``FAMTBEiT.famt_loss``), inputs = [view 1 B x 3 x H x W, view 2 for the tokenizer]:

1. ``FAMTBEiTPretrainViT.forward_famt(x, ids_masked, ids_visible)``: CLS, the mask token at the
   M masked patches, the patch embedding of the V visible ones (that order); absolute
   position embeddings (if any) of each token's own patch; every relative position bias
   (the shared one, each layer's own) gathered at [CLS, kept ids] rows and columns
   (:func:`kept_position_bias`), so each pair of tokens gets the bias of its own patches.
   The layers see 1 + M + V tokens. The shared bias so gathered is kept as
   ``shared_rel_pos_bias``, as mmpretrain's encoder keeps the whole one.
2. The tokenizer (DALL-E for v1, VQ-KD for v2) on the whole second view, taken at the masked
   patches (:func:`targets_at`).
3. v1: ``BEiTV1Head`` on the M masked tokens. v2: ``BEiTV2Neck`` (its extra layers get the
   gathered shared bias) and ``BEiTV2Head`` on the M masked tokens of both outputs. The
   heads are mmpretrain's, called with an all-true B x M mask.
"""
from contextlib import contextmanager
from typing import Dict, List, Tuple

import torch
from mmpretrain.models.selfsup import BEiT, BEiTPretrainViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .patch_ids import embed_patch_ids

__all__ = ['kept_position_bias', 'own_position_bias', 'targets_at', 'FAMTBEiTPretrainViT',
           'FAMTBEiT']


def kept_position_bias(bias: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """The relative position bias among CLS and the kept tokens, each at its own patch.

    Args:
        bias: H x (1 + L) x (1 + L), token 0 = CLS, then the L patches in raster order
            (``RelativePositionBias()``'s layout).
        kept: B x K patch ids, in the order the tokens enter the encoder.

    Returns:
        B x H x (1 + K) x (1 + K): entry [b, h, i, j] = bias[h, own(i), own(j)] with
        own(0) = 0 (CLS) and own(1 + k) = 1 + kept[b, k].
    """
    own = torch.cat([kept.new_zeros(kept.shape[0], 1), kept + 1], dim=1)  # B x (1 + K)
    return bias[:, own.unsqueeze(2), own.unsqueeze(1)].transpose(0, 1)


def own_position_bias(attn: torch.nn.Module) -> torch.Tensor:
    """A ``BEiTAttention``'s own whole-grid bias H x (1 + L) x (1 + L), from its table as its
    forward builds it."""
    n = attn.window_size[0] * attn.window_size[1] + 1
    table = attn.relative_position_bias_table
    return table[attn.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)


@contextmanager
def _own_table_withheld(attn: torch.nn.Module):
    """BEiTAttention adds its whole-grid table to any input; with kept tokens only, the
    caller adds the gathered one instead, so the table is withheld for one call."""
    table = attn.relative_position_bias_table
    attn.relative_position_bias_table = None
    try:
        yield
    finally:
        attn.relative_position_bias_table = table


def targets_at(target: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The tokenizer's output at patches ``ids`` (B x M).

    ``target``: DALL-E logits B x K x h x w (v1) -> B x K x M; VQ-KD token ids B x L (v2) ->
    B x M.
    """
    if target.dim() == 4:
        flat = target.flatten(2)
        return flat.gather(2, ids.unsqueeze(1).expand(-1, flat.shape[1], -1))
    return target.gather(1, ids)


@MODELS.register_module()
class FAMTBEiTPretrainViT(BEiTPretrainViT):
    """``BEiTPretrainViT`` that takes the masked and visible patch ids from outside.

    The same parameters (names, shapes, initialisation) as ``BEiTPretrainViT``.

    ``forward_famt(x, ids_masked, ids_visible)``: x B x 3 x H x W (H, W = ``img_size``),
    ids_masked B x M, ids_visible B x V -> a tuple (one per ``out_indices``) of
    B x (1 + M + V) x C: CLS, the masked tokens in the order of ``ids_masked``, the visible
    ones in the order of ``ids_visible``. ``forward(x, mask)`` is mmpretrain's, unchanged.
    """

    def forward_famt(self, x: torch.Tensor, ids_masked: torch.Tensor,
                     ids_visible: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        B, M = x.shape[0], ids_masked.shape[1]
        visible = embed_patch_ids(self.patch_embed, x, ids_visible)  # masked ones: mask token
        kept = torch.cat([ids_masked, ids_visible], dim=1)  # B x (M + V), token order
        tokens = torch.cat([self.cls_token.expand(B, -1, -1),
                            self.mask_token.expand(B, M, -1), visible], dim=1)
        if self.pos_embed is not None:
            pos = self.pos_embed[0]
            tokens = tokens + torch.cat([pos[:1].expand(B, 1, -1), pos[1:][kept]], dim=1)
        tokens = self.drop_after_pos(tokens)

        self.shared_rel_pos_bias = None
        if self.rel_pos_bias is not None:
            self.shared_rel_pos_bias = kept_position_bias(self.rel_pos_bias(), kept)
        outs = []
        for i, layer in enumerate(self.layers):
            if layer.attn.relative_position_bias_table is None:
                tokens = layer(tokens, rel_pos_bias=self.shared_rel_pos_bias)
            else:  # a layer's own bias (use_rel_pos_bias): never with a shared one
                bias = kept_position_bias(own_position_bias(layer.attn), kept)
                with _own_table_withheld(layer.attn):
                    tokens = layer(tokens, rel_pos_bias=bias)
            if i == len(self.layers) - 1 and self.final_norm:
                tokens = self.norm1(tokens)
            if i in self.out_indices:
                outs.append(tokens)
        return tuple(outs)


@MODELS.register_module()
class FAMTBEiT(FAMTAlgorithm, BEiT):
    """BEiT v1 / v2 with FAMT masking and throwing (see the module docstring).

    Args:
        backbone: ``FAMTBEiTPretrainViT``.
        neck / head / target_generator: mmpretrain's (v1: no neck, ``BEiTV1Head``, DALL-E;
            v2: ``BEiTV2Neck``, ``BEiTV2Head``, ``VQKD``). The tokenizer's token grid must be
            the encoder's patch grid (the second view's size: DALL-E 8 px per token).
        mask_generator (dict): ``FAMTMaskGenerator``; its ratios are of patches.
    """

    plain_algorithm = 'BEiT'
    famt_types = dict(type='FAMTBEiT', backbone=dict(type='FAMTBEiTPretrainViT'))
    pretrain_only_keys = ('mask_token', )

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        images, target_images = inputs[0], inputs[1]
        latent = self.backbone.forward_famt(images, split.masked, split.visible)
        with torch.no_grad():
            target = self.target_generator(target_images).detach()
        grid = tuple(target.shape[2:]) if target.dim() == 4 else tuple(target.shape[1:])
        if torch.Size(grid).numel() != self.patch_grid_hw[0] * self.patch_grid_hw[1]:
            raise ValueError(
                f'FAMTBEiT: the tokenizer gives {grid} tokens for the second view '
                f'{tuple(target_images.shape[-2:])}, but the encoder has {self.patch_grid_hw} '
                'patches; set the second view size so that the token grid is the patch grid '
                '(DALL-E: 8 px per token, VQ-KD: its patch size)')
        target = targets_at(target, split.masked)
        M = split.masked.shape[1]
        every = torch.ones(images.shape[0], M, dtype=torch.bool, device=images.device)
        if self.with_neck:  # v2
            feats, feats_cls_pt = self.neck(latent,
                                            rel_pos_bias=self.backbone.shared_rel_pos_bias)
            loss_1, loss_2 = self.head.loss(feats[:, :M], feats_cls_pt[:, :M], target, every)
            return dict(loss_1=loss_1, loss_2=loss_2)
        return dict(loss=self.head.loss(latent[0][:, :1 + M], target, every))  # v1

    def famt_reconstruct(self, inputs, split: FAMTSplit) -> None:
        """None: BEiT predicts tokenizer tokens, not pixels."""
        return None
