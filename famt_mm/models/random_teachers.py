"""Teachers with random weights, for tests and CPU demos where the pretrained ones cannot be
downloaded; the ImageNet configs use mmpretrain's own with the released weights.

``RandomCLIPGenerator``: mmpretrain's ``CLIPGenerator`` (EVA's and MILAN's target) on a
randomly initialised CLIP of a given size instead of a checkpoint; same forward, same outputs
(features B x (1 + L) x out_dims, last-layer attention B x (1 + L) x (1 + L)). Its arguments
are those of branch a_milan_maskfeat's (famt_milan.py), so either definition serves both.
"""
from mmpretrain.models.selfsup import CLIPGenerator
from mmpretrain.models.utils.clip_generator_helper import CLIP
from mmpretrain.registry import MODELS
from torch import nn

__all__ = ['RandomCLIPGenerator']


@MODELS.register_module()
class RandomCLIPGenerator(CLIPGenerator):
    """``CLIPGenerator`` around a randomly initialised CLIP of the given size, no checkpoint.

    Like mmpretrain's, its parameters are not frozen; its forward runs without gradient.

    Args:
        img_size / patch_size (int): input side and patch side of the image tower, in pixels.
        width (int): its channels, a multiple of 64 (CLIP gives it width // 64 heads).
        num_layers (int): its blocks.
        out_dims (int): feature size of the targets (CLIP ViT-B/16: 512).
    """

    def __init__(self, img_size: int = 32, patch_size: int = 8, width: int = 64,
                 num_layers: int = 1, out_dims: int = 64) -> None:
        nn.Module.__init__(self)  # CLIPGenerator.__init__ would load a checkpoint
        if width < 64 or width % 64:
            raise ValueError(f'RandomCLIPGenerator: width={width} must be a multiple of 64 '
                             '(CLIP gives its image tower width // 64 heads)')
        self.tokenizer_path = None
        # the text tower is unused by the generator: the smallest CLIP allows
        self.tokenizer = CLIP(out_dims, img_size, num_layers, width, patch_size,
                              context_length=1, vocab_size=1, transformer_width=64,
                              transformer_heads=1, transformer_layers=1).eval()
