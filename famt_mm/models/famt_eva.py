"""FAMT on top of mmpretrain's EVA: MAE's encoder and decoder predicting a frozen CLIP's
features of the masked patches (cosine loss). Thrown patches reach neither the encoder nor
the decoder nor the loss; the teacher, as in EVA, sees the whole image.

One step (``FAMTAlgorithm.loss`` draws the split, then ``FAMTEVA.famt_loss``):

1. ``target_generator`` (``CLIPGenerator``) on the whole image: a target for every patch,
   B x (1 + L) x D; the M masked patches' are taken, in the order of ``ids_masked``.
2. FAMTMAE's encoder and decoder (``FAMTViT.forward_famt`` on CLS + visible patches,
   ``FAMTPretrainDecoder.forward_famt`` on visible + masked tokens): B x M x D predictions.
3. ``MIMHead`` (EVA's ``CosineSimilarityLoss``) over the M masked patches.

The refresh's weights come from the student encoder, as FAMTMAE's; there are no pictures of a
reconstruction (the target is not pixels).
"""
from typing import Dict, List

import torch
from mmpretrain.models.selfsup import EVA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .famt_mae import FAMTMAE
from .patch_ids import gather_tokens

__all__ = ['FAMTEVA']


@MODELS.register_module()
class FAMTEVA(FAMTAlgorithm, EVA):
    """EVA with FAMT masking and throwing (contract: famt_mm/models/famt_algorithm.py).

    Args:
        backbone / neck: ``FAMTViT`` / ``FAMTPretrainDecoder`` (with EVA's
            ``predict_feature_dim``); head: EVA's ``MIMHead``; target_generator: EVA's
            ``CLIPGenerator`` (tests and demos: ``RandomCLIPGenerator``).
        mask_generator (dict): config of ``FAMTMaskGenerator`` (ratios of patches).
    """

    plain_algorithm = 'EVA'
    famt_types = dict(type='FAMTEVA', backbone=dict(type='FAMTViT'),
                      neck=dict(type='FAMTPretrainDecoder'))

    # FAMTMAE's encoder and decoder: its term context and masked-patch predictions serve as is
    famt_term_context = FAMTMAE.famt_term_context
    _predict_masked = FAMTMAE._predict_masked

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        features, _ = self.target_generator(inputs)  # whole images, as EVA's teacher sees them
        target = gather_tokens(features[:, 1:], split.masked)  # B x M x D
        pred = self._predict_masked(inputs, split)
        return dict(loss=self.head.loss(pred, target, pred.new_ones(pred.shape[:2])))

    def famt_reconstruct(self, inputs: torch.Tensor, split: FAMTSplit) -> None:
        """None: EVA predicts CLIP features, not pixels."""
        return None
