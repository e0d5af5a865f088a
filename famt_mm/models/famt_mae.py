"""FAMT on top of mmpretrain's MAE: the encoder sees only the visible patches, the
decoder only the visible and the masked ones (thrown patches never enter).

One image, start to end (``FAMTAlgorithm.loss`` draws the split, then ``FAMTMAE.famt_loss``):

1. ``FAMTMaskGenerator.sample``: its stored weight map (full-image grid) is cut
   with the sample's crop box and flip onto the crop's patch grid, and a
   Plackett-Luce draw splits the L patches into masked / thrown / visible.
2. ``FAMTViT.forward_famt(x, ids_visible)``: patch embed + pos embed, keep the visible
   tokens, prepend CLS, transformer, final norm. B x (1 + V) x C.
3. ``FAMTPretrainDecoder.forward_famt(latent, ids_visible, ids_masked)``: embed, append
   one mask token per MASKED patch, add each token's own decoder position
   embedding, transformer, predict pixels for the masked tokens. B x M x p*p*3.
4. ``FAMTPretrainHead.loss_famt``: MSE against the (norm-pix) targets of the masked
   patches, in the order of ``ids_masked``.

The weights come from ``FAMTAlgorithm.compute_famt_weights`` on whole, un-augmented images
(called by ``FAMTWeightHook``), from the encoder's own forward (``famt_term_context``).
mmpretrain's own methods (``forward``, ``loss``) are left as they are.
"""
from typing import Dict, List

import torch

from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.models.necks import MAEPretrainDecoder
from mmpretrain.models.selfsup import MAE, MAEViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .patch_ids import embed_patch_ids, gather_patches, gather_tokens, paste_patches

__all__ = ['FAMTViT', 'FAMTPretrainDecoder', 'FAMTPretrainHead', 'FAMTMAE',
           'reconstruct_pixels', 'gather_tokens', 'gather_patches']


@MODELS.register_module()
class FAMTViT(MAEViT):
    """MAE's ViT encoder with a FAMT path that takes the visible patch ids from outside.

    ``forward_famt(x, ids_visible)`` encodes only those patches; ``forward`` is MAEViT's.
    """

    def forward_famt(self, x: torch.Tensor, ids_visible: torch.Tensor) -> torch.Tensor:
        """x B x 3 x H x W, ids_visible B x V -> B x (1 + V) x C (CLS first, final norm)."""
        x = self.visible_tokens(x, ids_visible)
        for layer in self.layers:
            x = layer(x)
        return self.norm1(x)

    def visible_tokens(self, x: torch.Tensor, ids_visible: torch.Tensor) -> torch.Tensor:
        """The FAMT path's first layer input: CLS, then the patches ``ids_visible`` (B x V),
        each with its own position embedding. x B x 3 x H x W -> B x (1 + V) x C."""
        x = embed_patch_ids(self.patch_embed, x, ids_visible) + self.pos_embed[0, 1:][ids_visible]
        cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        return torch.cat((cls_tokens, x), dim=1)


@MODELS.register_module()
class FAMTPretrainDecoder(MAEPretrainDecoder):
    """MAE decoder with a FAMT path over the visible + masked tokens only (no thrown ones).

    ``forward_famt(x, ids_visible, ids_masked)``: x is the encoder output B x (1 + V) x C;
    returns predictions B x M x (p*p*3) for the masked patches, in the order of
    ``ids_masked``. The decoder runs on 1 + V + M tokens. ``forward`` is mmpretrain's.
    """

    def forward_famt(self, x: torch.Tensor, ids_visible: torch.Tensor,
                     ids_masked: torch.Tensor) -> torch.Tensor:
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
    """MAE's pixel head with a FAMT loss over the masked patches given by id.

    ``loss_famt(pred, inputs, ids_masked)``: pred B x M x (p*p*3), inputs B x 3 x H x W,
    ids_masked B x M. ``loss`` is mmpretrain's.
    """

    def loss_famt(self, pred: torch.Tensor, inputs: torch.Tensor,
                  ids_masked: torch.Tensor) -> torch.Tensor:
        target = self.masked_target(inputs, ids_masked)
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


def reconstruct_pixels(head: MAEPretrainHead, inputs: torch.Tensor, pred: torch.Tensor,
                       ids_masked: torch.Tensor, ids_visible: torch.Tensor) -> torch.Tensor:
    """Visible patches as they are, masked ones predicted; thrown / other ones zero.

    Args:
        head: MAE's pixel head (``patch_size``, ``norm_pix``).
        inputs: B x 3 x H x W, in the model's (normalised) input space.
        pred: B x M x (p*p*3), 'pqc' predictions of the patches ``ids_masked`` (B x M).
        ids_visible: B x V.

    With ``norm_pix`` the head learnt each masked patch's pixels normalised by that patch's
    own mean and variance, which a viewer does not have; they are mapped back with the
    visible patches' mean of per-patch means and mean of per-patch variances (exact when a
    masked patch shares those statistics).

    Returns:
        B x 3 x H x W in the input space.
    """
    p = head.patch_size
    visible = gather_patches(inputs, ids_visible, p, layout='pqc')
    if head.norm_pix:
        mean = visible.mean(-1).mean(1)[:, None, None]
        var = visible.var(-1).mean(1)[:, None, None]
        pred = pred * (var + 1.e-6) ** .5 + mean  # the head's epsilon
    recon = paste_patches(torch.zeros_like(inputs), ids_visible, visible, p, layout='pqc')
    return paste_patches(recon, ids_masked, pred, p, layout='pqc')


@MODELS.register_module()
class FAMTMAE(FAMTAlgorithm, MAE):
    """MAE with FAMT masking and throwing, on the contract of famt_mm/models/famt_algorithm.py.

    Args:
        backbone / neck / head: ``FAMTViT`` / ``FAMTPretrainDecoder`` /
            ``FAMTPretrainHead`` (as in mmpretrain's MAE configs).
        mask_generator (dict): config of ``FAMTMaskGenerator`` (ratios of patches).
    """

    plain_algorithm = 'MAE'
    famt_types = dict(type='FAMTMAE', backbone=dict(type='FAMTViT'),
                      neck=dict(type='FAMTPretrainDecoder'), head=dict(type='FAMTPretrainHead'))

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        pred = self._predict_masked(inputs, split)
        return dict(loss=self.head.loss_famt(pred, inputs, split.masked))

    def famt_reconstruct(self, inputs: torch.Tensor, split: FAMTSplit) -> torch.Tensor:
        pred = self._predict_masked(inputs, split)
        return reconstruct_pixels(self.head, inputs, pred, split.masked, split.visible)

    def _predict_masked(self, inputs: torch.Tensor, split: FAMTSplit) -> torch.Tensor:
        """Pixel predictions B x M x (p*p*3) of the masked patches ('pqc')."""
        latent = self.backbone.forward_famt(inputs, split.visible)
        return self.neck.forward_famt(latent, split.visible, split.masked)
