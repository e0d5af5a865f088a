"""FAMT on top of mmpretrain's SimMIM with a ViT encoder: masked patches become a learned
mask token, thrown patches never enter the encoder, a linear decoder predicts the pixels of
the masked patches, L1 loss on those pixels only (docs/design.md, "SimMIM").

Masking is decided on units of ``mask_patch_size`` pixels (32 px = 2 x 2 patches of 16 px,
a 7 x 7 unit grid at 224 px), as in SimMIM; the FAMT weight map and the bank live on that
unit grid.

One image, start to end (``FAMTAlgorithm.loss`` then ``FAMTSimMIM.famt_loss``):

1. ``FAMTMaskGenerator.sample`` on the unit grid: the bank's map is cut with the crop box
   and flip onto the crop's units and a Plackett-Luce draw splits them into masked /
   thrown / visible (random SimMIM masking before the FAMT phase).
2. ``FAMTAlgorithm.split_from_units``: each unit id -> the ids of its s x s patches (raster
   order on the patch grid).
3. ``FAMTSimMIMViT.forward_famt(x, ids_masked, ids_visible)``: the mask token at the masked
   patches, the patch embedding at the visible ones, each token with the absolute position
   embedding of its own patch, CLS prepended, transformer, final norm. Thrown patches have
   no token. B x (1 + M + V) x C, masked tokens first.
4. ``FAMTSimMIMLinearDecoder.forward_famt``: SimMIMLinearDecoder's 1x1 conv applied to
   the M masked tokens only -> B x M x (3 * p * p) pixels, in the channel-major order its
   PixelShuffle would lay out.
5. ``FAMTSimMIMHead.loss_famt``: L1 against the pixels of those patches, averaged over
   masked pixels and channels (``SimMIMHead`` + ``PixelReconstructionLoss('L1', channel=3)``).

The weights come from ``FAMTAlgorithm.compute_famt_weights`` on whole, un-augmented images: the
same terms as FAMTMAE on the patch grid (``famt_term_context``: the encoder's own forward),
then the mean of each unit's patches. mmpretrain's own methods are left as they are.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import SimMIMHead
from mmpretrain.models.necks import SimMIMLinearDecoder
from mmpretrain.models.selfsup import SimMIM
from mmpretrain.models.selfsup.maskfeat import MaskFeatViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_algorithm import FAMTAlgorithm, FAMTSplit
from .famt_sampling import pool_to_units, units_to_patches
from .patch_ids import embed_patch_ids, gather_patches, paste_patches

__all__ = ['SimMIMViT', 'FAMTSimMIMViT', 'FAMTSimMIMLinearDecoder', 'FAMTSimMIMHead',
           'FAMTSimMIM', 'units_to_patches', 'pool_to_units']


@MODELS.register_module()
class SimMIMViT(MaskFeatViT):
    """Plain ViT for mmpretrain's ``SimMIM``: mmpretrain's mask-token ViT (``MaskFeatViT``,
    absolute position embeddings, CLS token) whose masked forward returns the patch
    feature map that ``SimMIMLinearDecoder`` takes.

    ``forward(x, mask)``: mask B x h x w (1 = masked, the patch grid, as packed by
    ``SimMIMMaskGenerator``) -> ``(B x C x h x w, )``; ``mask=None`` gives plain features.
    """

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None):
        if mask is None:
            return super().forward(x, None)
        tokens = super().forward(x, mask.flatten(1))[:, 1:]  # B x L x C, CLS dropped
        h, w = self.patch_resolution
        return (tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w), )


@MODELS.register_module()
class FAMTSimMIMViT(SimMIMViT):
    """``SimMIMViT`` with a FAMT path that takes the masked and visible patch ids from outside
    (the same parameters, names and initialisation).

    ``forward_famt(x, ids_masked, ids_visible)`` -> B x (1 + M + V) x C (CLS, the M masked
    tokens in the order of ``ids_masked``, the V visible ones); ``forward`` is SimMIMViT's.
    """

    def forward_famt(self, x: torch.Tensor, ids_masked: torch.Tensor,
                     ids_visible: torch.Tensor) -> torch.Tensor:
        B, M = x.shape[0], ids_masked.shape[1]
        # only the visible patches are embedded: a masked one's embedding is replaced anyway
        visible = embed_patch_ids(self.patch_embed, x, ids_visible)
        tokens = torch.cat([self.mask_token.expand(B, M, -1), visible], dim=1)
        tokens = tokens + self.pos_embed[0, 1:][torch.cat([ids_masked, ids_visible], dim=1)]
        cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(B, -1, -1)
        x = self.drop_after_pos(torch.cat((cls_tokens, tokens), dim=1))
        for layer in self.layers:
            x = layer(x)
        return self.norm1(x) if self.final_norm else x


@MODELS.register_module()
class FAMTSimMIMLinearDecoder(SimMIMLinearDecoder):
    """``SimMIMLinearDecoder`` (1x1 conv to 3 * p * p, PixelShuffle(p)) applied per token.

    ``forward_famt(x)``: x B x K x C -> B x K x (3 * p * p), the values the conv and the
    pixel shuffle would put on each token's p x p patch, channel-major ('cpq': channel,
    row, column). ``forward`` on a B x C x h x w map is mmpretrain's.
    """

    def forward_famt(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.decoder[0]
        return F.linear(x, conv.weight.flatten(1), conv.bias)


@MODELS.register_module()
class FAMTSimMIMHead(SimMIMHead):
    """``SimMIMHead`` with a FAMT loss over the masked patches given by id.

    ``loss_famt(pred, inputs, ids_masked)``: pred B x M x (3 * p * p) in 'cpq' order,
    inputs B x 3 x H x W, ids_masked B x M patch ids. ``loss`` is mmpretrain's.
    """

    def loss_famt(self, pred: torch.Tensor, inputs: torch.Tensor,
                  ids_masked: torch.Tensor) -> torch.Tensor:
        target = gather_patches(inputs, ids_masked, self.patch_size, layout='cpq')
        # every element is a masked pixel: the plain mean is SimMIMHead's masked mean
        return self.loss_module(pred, target)


@MODELS.register_module()
class FAMTSimMIM(FAMTAlgorithm, SimMIM):
    """SimMIM with FAMT masking and throwing on mask units, on the contract of
    famt_mm/models/famt_algorithm.py (``grid_hw`` is the unit grid of the bank's maps).

    Args:
        backbone / neck / head: ``FAMTSimMIMViT`` / ``FAMTSimMIMLinearDecoder``
            (``encoder_stride`` = patch size) / ``FAMTSimMIMHead`` (``patch_size`` = patch
            size).
        mask_generator (dict): config of ``FAMTMaskGenerator``; its ratios are of units.
        mask_patch_size (int): side of a mask unit in pixels, a multiple of the patch size
            dividing the input size. 32.
    """

    plain_algorithm = 'SimMIM'
    famt_types = dict(type='FAMTSimMIM', backbone=dict(type='FAMTSimMIMViT'),
                      neck=dict(type='FAMTSimMIMLinearDecoder'), head=dict(type='FAMTSimMIMHead'))
    pretrain_only_keys = ('mask_token', )

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='FAMTMaskGenerator'),
                 mask_patch_size: int = 32, **kwargs):
        self.mask_patch_size = mask_patch_size  # read by famt_unit_scale in super().__init__
        super().__init__(backbone=backbone, neck=neck, head=head, mask_generator=mask_generator,
                         **kwargs)
        patch = self.patch_size[0]
        pred_dim = self.neck.decoder[0].out_channels
        if pred_dim != 3 * patch * patch or self.head.patch_size != patch:
            raise ValueError(
                f'FAMTSimMIM: the decoder predicts {pred_dim} values per token and the head '
                f'expands masks by {self.head.patch_size} px, but patches are {patch} px: set '
                f'neck.encoder_stride={patch} and head.patch_size={patch}')

    def famt_unit_scale(self) -> int:
        patch = self.backbone.patch_embed.projection.kernel_size[0]
        size = tuple(int(s) for s in self.backbone.img_size)
        if self.mask_patch_size % patch or any(s % self.mask_patch_size for s in size):
            raise ValueError(
                f'FAMTSimMIM: mask_patch_size={self.mask_patch_size} must be a multiple of the '
                f'patch size {patch} and divide the input size {size}; e.g. 32 for 16 px '
                'patches at 224 px')
        return self.mask_patch_size // patch

    famt_term_context = FAMTAlgorithm.backbone_term_context

    def famt_loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
                  split: FAMTSplit) -> Dict[str, torch.Tensor]:
        pred = self._predict_masked(inputs, split)
        return dict(loss=self.head.loss_famt(pred, inputs, split.masked))

    def famt_reconstruct(self, inputs: torch.Tensor, split: FAMTSplit) -> torch.Tensor:
        p = self.patch_size[0]
        pred = self._predict_masked(inputs, split)
        visible = gather_patches(inputs, split.visible, p, layout='cpq')
        recon = paste_patches(torch.zeros_like(inputs), split.visible, visible, p, layout='cpq')
        return paste_patches(recon, split.masked, pred, p, layout='cpq')

    def _predict_masked(self, inputs: torch.Tensor, split: FAMTSplit) -> torch.Tensor:
        """Pixel predictions B x M x (3 * p * p) of the masked patches ('cpq')."""
        latent = self.backbone.forward_famt(inputs, split.masked, split.visible)
        return self.neck.forward_famt(latent[:, 1:1 + split.masked.shape[1]])
