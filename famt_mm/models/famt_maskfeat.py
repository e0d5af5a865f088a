"""FAMT on top of mmpretrain's MaskFeat (mask-token family): masked patches enter the encoder
as the mask token, visible ones as their patch embedding, thrown ones not at all; the HOG
features of the masked patches are the target.

One image, start to end (``FAMTAlgorithm.loss`` draws the split, then ``famt_loss``):

1. the split: masked / thrown / visible patch ids (B x M / B x T / B x V) on the patch grid.
2. ``FAMTMaskFeatViT.forward_famt(x, ids_masked, ids_visible)``: the mask token at the M
   masked patches, the patch embedding of the V visible ones, each with its own patch's
   position embedding, CLS prepended, transformer, final norm: B x (1 + M + V) x C.
3. the recipe's ``LinearNeck`` on the M masked tokens only: B x M x D (D = 3 * nbins * cells
   per patch).
4. ``HOGGenerator`` on the whole image (a fixed, gradient-free target, as in MaskFeat), its
   features taken at the masked patches; ``MIMHead`` (L2 ``PixelReconstructionLoss``) over
   the masked patches only.

mmpretrain's ``HOGGenerator`` lays its cells out on a 14 x 14 patch grid, so the ViT must
have one (224 px / 16 px, or a tiny 56 px / 4 px for the CPU demo); checked when built.
"""
from typing import Dict, List

import torch
from mmpretrain.models.selfsup import MaskFeat
from mmpretrain.models.selfsup.maskfeat import MaskFeatViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .famt_simmim import FAMTSimMIMViT
from .patch_ids import gather_tokens

__all__ = ['FAMTMaskFeatViT', 'FAMTMaskFeat']

#: The patch grid mmpretrain's HOGGenerator lays its features out on (its ``_reshape``).
HOG_GRID = 14


@MODELS.register_module()
class FAMTMaskFeatViT(FAMTSimMIMViT):
    """``MaskFeatViT`` (same parameters and initialisation) with the mask-token FAMT path it
    shares with SimMIM: ``forward_famt(x, ids_masked, ids_visible)`` -> B x (1 + M + V) x C
    (CLS, the masked tokens in the order of ``ids_masked``, then the visible ones; thrown
    patches have no token). ``forward`` is MaskFeatViT's.
    """

    forward = MaskFeatViT.forward  # not SimMIMViT's feature-map forward


@MODELS.register_module()
class FAMTMaskFeat(FAMTAlgorithm, MaskFeat):
    """MaskFeat with FAMT masking and throwing (the contract: famt_mm/models/famt_algorithm.py).

    Args:
        backbone: ``FAMTMaskFeatViT`` (arguments as ``MaskFeatViT``'s, 14 x 14 patches).
        neck / head / target_generator: the recipe's ``LinearNeck`` / ``MIMHead`` /
            ``HOGGenerator``, unchanged.
        mask_generator (dict): ``FAMTMaskGenerator`` config (ratios of patches).
    """

    plain_algorithm = 'MaskFeat'
    famt_types = dict(type='FAMTMaskFeat', backbone=dict(type='FAMTMaskFeatViT'))
    pretrain_only_keys = ('mask_token', )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hog = self.target_generator
        if self.patch_grid_hw != (HOG_GRID, HOG_GRID) or self.patch_size[0] % hog.pool:
            raise ValueError(
                f'FAMTMaskFeat: HOGGenerator lays its features out on a {HOG_GRID} x '
                f'{HOG_GRID} patch grid with cells of pool={hog.pool} px, but the ViT has a '
                f'{self.patch_grid_hw} grid of {self.patch_size[0]} px patches; use '
                f'img_size = {HOG_GRID} * patch_size and a pool dividing the patch size '
                '(224 / 16 / 8 as the recipe)')

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        latent = self.backbone.forward_famt(inputs, split.masked, split.visible)
        masked = latent[:, 1:1 + split.masked.shape[1]]  # B x M x C
        B, M, C = masked.shape
        pred = self.neck((masked.reshape(B * M, C), ))[0].view(B, M, -1)
        hog = gather_tokens(self.target_generator(inputs), split.masked)  # B x M x D
        return dict(loss=self.head.loss(pred, hog, pred.new_ones(B, M)))

    def famt_reconstruct(self, inputs: torch.Tensor, split: FAMTSplit) -> None:
        return None  # the target is HOG features, not pixels
