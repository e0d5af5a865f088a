"""FAMT on top of mmpretrain's MFF: MAE whose encoder output is a learned fusion of several of
its layers' outputs. Thrown patches reach neither the encoder nor the decoder nor the loss.

One step (``FAMTAlgorithm.loss`` draws the split, then ``FAMTMFF.famt_loss``):

1. ``FAMTMFFViT.forward_famt(x, ids_visible)``: CLS + the visible patches
   (``FAMTViT.visible_tokens``), the transformer; the outputs of the layers ``out_indices``
   (all but the last projected) are summed with softmax(``proj_weights``), then the final
   norm. B x (1 + V) x C.
2. and 3. are FAMTMAE's: ``FAMTPretrainDecoder.forward_famt`` on the visible + masked tokens,
   ``FAMTPretrainHead.loss_famt`` on the masked patches. The fusion weights are logged as
   MFF logs them (``weight_0``, ...).

The refresh's weights, the pictures and the reconstruction are FAMTMAE's.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import MFF, MAEViT, MFFViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTSplit
from .famt_mae import FAMTMAE, FAMTViT

__all__ = ['FAMTMFFViT', 'FAMTMFF']


@MODELS.register_module()
class FAMTMFFViT(FAMTViT, MFFViT):
    """MFF's multi-level-fusion ViT with the FAMT path on the visible patch ids.

    ``forward_famt(x, ids_visible)``: x B x 3 x H x W, ids_visible B x V ->
    B x (1 + V) x C. ``forward`` is MFFViT's, except that ``mask=None`` gives the whole-image
    features (MFFViT's calls ``MAEViT.forward(x)``, which masks at random).
    """

    def forward(self, x: torch.Tensor, mask: Optional[bool] = True):
        if mask is None or mask is False:
            return MAEViT.forward(self, x, None)
        return super().forward(x, mask)

    def forward_famt(self, x: torch.Tensor, ids_visible: torch.Tensor) -> torch.Tensor:
        x = self.visible_tokens(x, ids_visible)
        levels = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                last = i == self.out_indices[-1]
                levels.append(x if last else self.proj_layers[self.out_indices.index(i)](x))
        fused = (torch.stack(levels) * self.fusion_weights().view(-1, 1, 1, 1)).sum(dim=0)
        return self.norm1(fused)

    def fusion_weights(self) -> torch.Tensor:
        """softmax(``proj_weights``): the weight of each level in ``out_indices``. K."""
        return F.softmax(self.proj_weights, dim=0).view(-1)


@MODELS.register_module()
class FAMTMFF(FAMTMAE, MFF):
    """MFF with FAMT masking and throwing (contract: famt_mm/models/famt_algorithm.py).

    Args:
        backbone / neck / head: ``FAMTMFFViT`` / ``FAMTPretrainDecoder`` /
            ``FAMTPretrainHead`` (mmpretrain's MFF recipe with these types).
        mask_generator (dict): config of ``FAMTMaskGenerator`` (ratios of patches).
    """

    plain_algorithm = 'MFF'
    famt_types = dict(type='FAMTMFF', backbone=dict(type='FAMTMFFViT'),
                      neck=dict(type='FAMTPretrainDecoder'), head=dict(type='FAMTPretrainHead'))
    # the fusion's projections and weights: pre-training only, a plain ViT has none
    pretrain_only_keys = ('proj_layers', 'proj_weights')

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        losses = super().famt_loss(inputs, data_samples, split)
        weights = self.backbone.fusion_weights()
        losses.update({f'weight_{i}': w for i, w in enumerate(weights)})
        return losses
