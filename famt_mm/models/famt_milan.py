"""FAMT on top of mmpretrain's MILAN (visible-token family): thrown patches reach neither the
encoder, nor the prompting decoder's queries or keys, nor the loss.

MILAN chooses the patches it keeps by the CLIP teacher's CLS attention (``MILANViT``'s
``attention_masking``: a multinomial draw on that importance). FAMT's split takes the place
of that choice: FAMT's weights decide which patches are masked, thrown and visible; the CLIP
teacher stays as the target (its features of the whole image).

One image, start to end (``FAMTAlgorithm.loss`` draws the split, then ``famt_loss``):

1. the split: masked / thrown / visible patch ids (B x M / B x T / B x V).
2. ``FAMTMILANViT.forward_famt(x, ids_visible)``: the V visible patches only, each with its
   own position embedding, CLS prepended, transformer, final norm: B x (1 + V) x C.
3. ``FAMTMILANPretrainDecoder.forward_famt(latent, ids_visible, ids_masked)``: the encoder's
   tokens become the fixed prompts (CLS + V), one mask-token query per MASKED patch; each
   prompting block updates the M queries, attending to the 1 + V + M tokens (in raster
   order of their patches, as MILAN's); norm and projection of all 1 + V + M tokens:
   B x (1 + V + M) x D.
4. the CLIP teacher on the whole image (B x (1 + L) x D, gradient-free), taken at CLS, the
   visible and the masked patches; ``MIMHead`` with ``CosineSimilarityLoss`` over those
   1 + V + M tokens (MILAN's loss covers every token; the thrown ones are left out).
"""
from typing import Dict, List

import torch
from mmpretrain.models.necks import MILANPretrainDecoder
from mmpretrain.models.selfsup import MILAN
from mmpretrain.models.selfsup.milan import MILANViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .famt_mae import FAMTViT
from .patch_ids import gather_tokens

__all__ = ['FAMTMILANViT', 'FAMTMILANPretrainDecoder', 'FAMTMILAN']


@MODELS.register_module()
class FAMTMILANViT(MILANViT, FAMTViT):
    """``MILANViT`` (same parameters and initialisation) with the visible-token FAMT path it
    shares with MAE: ``forward_famt(x, ids_visible)`` -> B x (1 + V) x C (CLS first, final
    norm). ``forward`` is MILANViT's.
    """


@MODELS.register_module()
class FAMTMILANPretrainDecoder(MILANPretrainDecoder):
    """``MILANPretrainDecoder`` with a FAMT path over the visible and masked tokens only.

    ``forward_famt(x, ids_visible, ids_masked)``: x the encoder output B x (1 + V) x C,
    ids B x V and B x M -> B x (1 + V + M) x D predictions (CLS, the visible patches in the
    order of ``ids_visible``, the masked ones in the order of ``ids_masked``). ``forward``
    is MILAN's.
    """

    def forward_famt(self, x: torch.Tensor, ids_visible: torch.Tensor,
                     ids_masked: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(x)
        B, _, D = x.shape
        pos = self.decoder_pos_embed[0]  # (1 + L) x D, index 0 = CLS
        prompts = torch.cat([x[:, :1] + pos[:1], x[:, 1:] + pos[1:][ids_visible]], dim=1)
        queries = self.mask_token.expand(B, ids_masked.shape[1], D) + pos[1:][ids_masked]
        # the blocks' keys: visible then masked, put in raster order of their patches
        key_order = torch.argsort(torch.cat([ids_visible, ids_masked], dim=1), dim=1)
        for blk in self.decoder_blocks:
            queries = blk(queries, prompts, key_order)
        return self.decoder_pred(self.decoder_norm(torch.cat([prompts, queries], dim=1)))


@MODELS.register_module()
class FAMTMILAN(FAMTAlgorithm, MILAN):
    """MILAN with FAMT masking and throwing (the contract: famt_mm/models/famt_algorithm.py).

    Args:
        backbone / neck: ``FAMTMILANViT`` / ``FAMTMILANPretrainDecoder`` (MILAN's arguments;
            the backbone's ``mask_ratio`` is unused, the mask generator's ratios count).
        head / target_generator: the recipe's ``MIMHead`` (``CosineSimilarityLoss``) and
            ``CLIPGenerator``, unchanged.
        mask_generator (dict): ``FAMTMaskGenerator`` config (ratios of patches).
    """

    plain_algorithm = 'MILAN'
    famt_types = dict(type='FAMTMILAN', backbone=dict(type='FAMTMILANViT'),
                      neck=dict(type='FAMTMILANPretrainDecoder'))

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        clip_feature, _ = self.target_generator(inputs)  # its importance: FAMT's split instead
        latent = self.backbone.forward_famt(inputs, split.visible)
        pred = self.neck.forward_famt(latent, split.visible, split.masked)
        kept = torch.cat([split.visible.new_zeros(split.visible.shape[0], 1),
                          split.visible + 1, split.masked + 1], dim=1)  # token ids, 0 = CLS
        target = gather_tokens(clip_feature, kept)
        return dict(loss=self.head.loss(pred, target))

    def famt_reconstruct(self, inputs: torch.Tensor, split: FAMTSplit) -> None:
        return None  # the target is CLIP features, not pixels
