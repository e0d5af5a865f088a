"""FAMT on top of mmpretrain's SimMIM with a ViT encoder: masked patches become a learned
mask token, thrown patches never enter the encoder, a linear decoder predicts the pixels of
the masked patches, L1 loss on those pixels only (docs/design.md, "SimMIM").

Masking is decided on units of ``mask_patch_size`` pixels (32 px = 2 x 2 patches of 16 px,
a 7 x 7 unit grid at 224 px), as in SimMIM; the FAMT weight map and the bank live on that
unit grid.

One image, start to end (``FAMTSimMIM.loss``):

1. ``FAMTMaskGenerator.sample`` on the unit grid: the bank's map is cut with the crop box
   and flip onto the crop's units and a Plackett-Luce draw splits them into masked /
   thrown / visible (random SimMIM masking before the FAMT phase).
2. ``units_to_patches``: each unit id -> the ids of its s x s patches (raster order on the
   patch grid).
3. ``FAMTSimMIMViT.forward(x, ids_masked=, ids_visible=)``: the mask token at the masked
   patches, the patch embedding at the visible ones, each token with the absolute position
   embedding of its own patch, CLS prepended, transformer, final norm. Thrown patches have
   no token. B x (1 + M + V) x C, masked tokens first.
4. ``FAMTSimMIMLinearDecoder.forward_tokens``: SimMIMLinearDecoder's 1x1 conv applied to
   the M masked tokens only -> B x M x (3 * p * p) pixels, in the channel-major order its
   PixelShuffle would lay out.
5. ``FAMTSimMIMHead.loss_tokens``: L1 against the pixels of those patches, averaged over
   masked pixels and channels (``SimMIMHead`` + ``PixelReconstructionLoss('L1', channel=3)``).

The weights come from ``FAMTSimMIM.compute_famt_weights`` on whole, un-augmented images: the
same attention and frequency terms as FAMTMAE on the patch grid, then the mean of each
unit's patches.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import SimMIMHead
from mmpretrain.models.necks import SimMIMLinearDecoder
from mmpretrain.models.selfsup import MAEViT, SimMIM
from mmpretrain.models.selfsup.maskfeat import MaskFeatViT
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .famt_mae import FAMTViT, gather_patches, vit_term_context
from .famt_sampling import pool_to_units, units_to_patches
from .hook_guard import FAMTHookRequiredMixin

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
class FAMTSimMIMViT(FAMTViT):
    """``SimMIMViT`` that takes the masked and visible patch ids from outside.

    The same parameters (names and shapes) and initialisation as ``SimMIMViT``: learned
    absolute position embeddings (trainable, unlike MAE's fixed sin-cos ones) and a mask
    token. Inherits ``FAMTViT.forward_famt_terms`` (the refresh's attention and frequency
    terms) and ``embed_patches``.

    ``forward(x, ids_masked=, ids_visible=)`` -> B x (1 + M + V) x C (CLS, the M masked
    tokens in the order of ``ids_masked``, the V visible ones); ``forward(x)`` gives plain
    features (evaluation).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pos_embed.requires_grad = True  # MAEViT freezes its sin-cos table
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, self.embed_dims))

    def init_weights(self) -> None:
        # SimMIMViT's (MaskFeatViT's) initialisation, not MAEViT's sin-cos / xavier one
        super(MAEViT, self).init_weights()  # VisionTransformer's, skipping MAEViT's
        if not (isinstance(self.init_cfg, dict) and self.init_cfg['type'] == 'Pretrained'):
            for p in (self.cls_token, self.mask_token, self.pos_embed):
                torch.nn.init.trunc_normal_(p, std=.02)
            self.apply(lambda m: MaskFeatViT._init_weights(self, m))

    def forward(self, x: torch.Tensor, mask: Optional[bool] = None, *,
                ids_masked: Optional[torch.Tensor] = None,
                ids_visible: Optional[torch.Tensor] = None):
        if ids_visible is None:
            return super().forward(x, None)
        B, M = x.shape[0], ids_masked.shape[1]
        # only the visible patches are embedded: a masked one's embedding is replaced anyway
        visible = self.embed_patches(x, ids_visible)
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

    ``forward_tokens(x)``: x B x K x C -> B x K x (3 * p * p), the values the conv and the
    pixel shuffle would put on each token's p x p patch, channel-major ('cpq': channel,
    row, column). ``forward(x)`` on a B x C x h x w map is mmpretrain's.
    """

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.decoder[0]
        return F.linear(x, conv.weight.flatten(1), conv.bias)


@MODELS.register_module()
class FAMTSimMIMHead(SimMIMHead):
    """``SimMIMHead`` with the loss over the masked patches given by id.

    ``loss_tokens(pred, inputs, ids_masked)``: pred B x M x (3 * p * p) in 'cpq' order,
    inputs B x 3 x H x W, ids_masked B x M patch ids. ``loss(pred_img, inputs, mask)`` is
    mmpretrain's.
    """

    def loss_tokens(self, pred: torch.Tensor, inputs: torch.Tensor,
                    ids_masked: torch.Tensor) -> torch.Tensor:
        target = gather_patches(inputs, ids_masked, self.patch_size, layout='cpq')
        # every element is a masked pixel: the plain mean is SimMIMHead's masked mean
        return self.loss_module(pred, target)


@MODELS.register_module()
class FAMTSimMIM(FAMTHookRequiredMixin, SimMIM):
    """SimMIM with FAMT masking and throwing on mask units.

    Args:
        backbone / neck / head: ``FAMTSimMIMViT`` / ``FAMTSimMIMLinearDecoder``
            (``encoder_stride`` = patch size) / ``FAMTSimMIMHead`` (``patch_size`` = patch
            size).
        mask_generator (dict): config of ``FAMTMaskGenerator``; its ratios are of units.
        mask_patch_size (int): side of a mask unit in pixels, a multiple of the patch size
            dividing the input size. 32.

    Attributes (shared with ``FAMTMAE``, used by ``FAMTWeightHook``):
        grid_hw: the unit grid, the grid of the weight maps in the bank.
        input_hw: (H, W) input size, the size of the refresh images.
        patch_grid_hw: the ViT's patch grid.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='FAMTMaskGenerator'),
                 mask_patch_size: int = 32, **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.mask_generator = MODELS.build(mask_generator)
        patch = self.backbone.patch_embed.projection.kernel_size[0]
        self.input_hw = tuple(int(s) for s in self.backbone.img_size)
        self.patch_grid_hw = tuple(int(g) for g in self.backbone.patch_resolution)
        if mask_patch_size % patch or any(s % mask_patch_size for s in self.input_hw):
            raise ValueError(
                f'FAMTSimMIM: mask_patch_size={mask_patch_size} must be a multiple of the patch '
                f'size {patch} and divide the input size {self.input_hw}; e.g. 32 for 16 px '
                'patches at 224 px')
        pred_dim = self.neck.decoder[0].out_channels
        if pred_dim != 3 * patch * patch or self.head.patch_size != patch:
            raise ValueError(
                f'FAMTSimMIM: the decoder predicts {pred_dim} values per token and the head '
                f'expands masks by {self.head.patch_size} px, but patches are {patch} px: set '
                f'neck.encoder_stride={patch} and head.patch_size={patch}')
        self.unit_scale = mask_patch_size // patch
        self.grid_hw = tuple(g // self.unit_scale for g in self.patch_grid_hw)

    def sample_patch_ids(self, data_samples: List[DataSample], batch_size: int, device
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masked / thrown / visible PATCH ids (B x M, B x T, B x V) of this batch."""
        units = self.mask_generator.sample(data_samples, self.grid_hw, batch_size, device)
        return tuple(units_to_patches(u, self.grid_hw[1], self.unit_scale) for u in units)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        ids_masked, _, ids_visible = self.sample_patch_ids(data_samples, inputs.shape[0],
                                                           inputs.device)
        latent = self.backbone(inputs, ids_masked=ids_masked, ids_visible=ids_visible)
        pred = self.neck.forward_tokens(latent[:, 1:1 + ids_masked.shape[1]])
        return dict(loss=self.head.loss_tokens(pred, inputs, ids_masked))

    @torch.no_grad()
    def compute_famt_weights(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """FAMT sampling weights of whole, un-augmented, normalised images, per mask unit.

        Returns weights B x h x w on the unit grid (float32, sanitised: the mean of
        positive finite patch weights) and the fallback flags B.
        """
        was_training = self.training
        self.eval()
        gen = self.mask_generator
        # the one call of the generator's term API in this module
        weights, fallback = gen.weighting.weights(
            vit_term_context(self.backbone, inputs, gen))
        self.train(was_training)
        return pool_to_units(weights.view(-1, *self.patch_grid_hw), self.unit_scale), fallback
