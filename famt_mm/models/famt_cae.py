"""FAMT on top of mmpretrain's CAE (Context Autoencoder): the encoder sees only the visible
patches; the regressor's queries, the EMA teacher's alignment targets, the decoder's
predictions and both losses only the masked ones; thrown patches reach none of them.

One step, start to end (``FAMTCAE.famt_loss``; inputs = [view B x 3 x H x W for the
encoder, second view B x 3 x H' x W' for the DALL-E tokenizer], as
``TwoNormDataPreprocessor`` gives them):

1. the split (``FAMTAlgorithm.loss``): masked B x M / thrown B x T / visible B x V patch
   ids; masked and visible are put in raster order, the order in which mmpretrain's CAE
   reads its boolean mask.
2. ``FAMTCAEViT.forward_patch_ids(view, visible)``: CLS + the V visible patches, each with
   its own position embedding -> latents B x (1 + V) x C.
3. the teacher (same class, EMA of the encoder, no gradient) encodes CLS + the M masked
   patches -> alignment targets B x M x C; then ``momentum_update`` (once per step, as CAE).
4. ``FAMTCAENeck``: M mask-token queries with the position embeddings of the masked
   patches attend to the V visible latents and to themselves (keys with the visible then
   masked position embeddings) -> latent predictions B x M x C; the decoder -> DALL-E token
   logits B x M x vocab.
5. ``CAEHead`` (mmpretrain's): the tokenizer runs on the whole second view; its tokens are
   taken at the masked patches only (a boolean mask with exactly the masked ids set), cross
   entropy on them plus the alignment MSE.

The refresh's weights come from the encoder's own unmasked forward (``famt_term_context``).
"""
from typing import Dict, List

import torch
from mmpretrain.models.necks import CAENeck
from mmpretrain.models.selfsup import CAE, CAEPretrainViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .patch_ids import embed_patch_ids, gather_tokens

__all__ = ['FAMTCAEViT', 'FAMTCAENeck', 'FAMTCAE', 'ids_to_mask']


def ids_to_mask(ids: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Boolean mask B x L, True exactly at the patch ids ``ids`` (B x K)."""
    mask = torch.zeros(ids.shape[0], num_patches, dtype=torch.bool, device=ids.device)
    return mask.scatter_(1, ids, True)


@MODELS.register_module()
class FAMTCAEViT(CAEPretrainViT):
    """``CAEPretrainViT`` (same parameters and initialisation) that also encodes patches
    given by id: ``forward_patch_ids(x, ids)``, reading only those patches' pixels
    (``patch_ids.embed_patch_ids``). ``forward(x, mask)`` is mmpretrain's."""

    def forward_patch_ids(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """CLS + the patches ``ids`` (B x K) of ``x`` (B x 3 x H x W), each token with the
        position embedding of its own patch, through every layer and the final norm.

        Returns:
            B x (1 + K) x C, patch tokens in the order of ``ids``.
        """
        tokens = embed_patch_ids(self.patch_embed, x, ids) + self.pos_embed[0, 1:][ids]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self.drop_after_pos(torch.cat((cls, tokens), dim=1))
        for layer in self.layers:
            x = layer(x, rel_pos_bias=None)  # CAE's masked forward has no relative bias
        return self.norm1(x) if self.final_norm else x


@MODELS.register_module()
class FAMTCAENeck(CAENeck):
    """``CAENeck`` (same parameters) with one mask-token query per row of
    ``pos_embed_masked`` (B x M x C) instead of a fixed ``mask_tokens_num``: FAMT's masked
    count differs between its random and FAMT phases. ``forward`` as ``CAENeck``'s."""

    def forward(self, x_unmasked: torch.Tensor, pos_embed_masked: torch.Tensor,
                pos_embed_unmasked: torch.Tensor):
        # CAENeck.forward reads the query count from this attribute: set it to this step's M
        self.mask_token_num = pos_embed_masked.shape[1]
        return super().forward(x_unmasked, pos_embed_masked, pos_embed_unmasked)


@MODELS.register_module()
class FAMTCAE(FAMTAlgorithm, CAE):
    """CAE with FAMT masking and throwing (the contract: famt_mm/models/famt_algorithm.py).

    Args:
        mask_generator (dict): ``FAMTMaskGenerator`` config, ratios of patches.
        backbone / neck / head / target_generator / base_momentum: as ``CAE``, with
            ``FAMTCAEViT`` / ``FAMTCAENeck`` (:attr:`famt_types`); the teacher is built from
            the backbone config, as in CAE.
    """

    plain_algorithm = 'CAE'
    famt_types = dict(type='FAMTCAE', backbone=dict(type='FAMTCAEViT'),
                      neck=dict(type='FAMTCAENeck'))

    def famt_loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        """CAE's losses with the masked / visible sets of ``split`` (thrown ones unused).

        Args:
            inputs: [encoder view B x 3 x H x W, tokenizer view B x 3 x H' x W'] (the
                tokenizer's grid must be the patch grid).
        """
        view, tokenizer_view = inputs
        # raster order: the order CAE's boolean masks give (and CAEHead's target[mask])
        masked = split.masked.sort(dim=1).values
        visible = split.visible.sort(dim=1).values
        latents = self.backbone.forward_patch_ids(view, visible)
        with torch.no_grad():
            latent_target = self.teacher.forward_patch_ids(view, masked)[:, 1:]
            self.momentum_update()
        pos_embed = self.backbone.pos_embed[0, 1:].expand(view.shape[0], -1, -1)
        logits, latent_pred = self.neck(latents[:, 1:], gather_tokens(pos_embed, masked),
                                        gather_tokens(pos_embed, visible))
        logits_target = self.target_generator(tokenizer_view)
        if tuple(logits_target.shape[-2:]) != tuple(self.patch_grid_hw):
            raise ValueError(
                f'FAMTCAE: the tokenizer gives a {tuple(logits_target.shape[-2:])} token grid '
                f'for the second view {tuple(tokenizer_view.shape[-2:])}, but the encoder\'s '
                f'patch grid is {self.patch_grid_hw}; set the two-view crop\'s second_size to '
                f'{self.patch_grid_hw[0] * 8} (DALL-E: 8 px per token)')
        mask = ids_to_mask(masked, logits_target.shape[-2] * logits_target.shape[-1])
        loss_main, loss_align = self.head.loss(logits.flatten(0, 1), logits_target,
                                               latent_pred, latent_target, mask)
        return dict(loss=loss_main + loss_align, main=loss_main, align=loss_align)

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_reconstruct(self, inputs, split: FAMTSplit):
        """None: CAE predicts DALL-E tokens, not pixels."""
        return None
