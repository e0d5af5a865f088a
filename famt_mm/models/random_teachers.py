"""Teachers with random weights, for tests and CPU demos where the pretrained ones cannot be
downloaded; the ImageNet configs use mmpretrain's own with the released weights.

``RandomCLIPGenerator``: mmpretrain's ``CLIPGenerator`` (EVA's and MILAN's target) on a
randomly initialised CLIP of a given size instead of a checkpoint; same forward, same outputs
(features B x (1 + L) x out_dim, last-layer attention B x (1 + L) x (1 + L)).
"""
from mmpretrain.models.selfsup import CLIPGenerator
from mmpretrain.models.utils.clip_generator_helper import CLIP
from mmpretrain.registry import MODELS
from torch import nn

__all__ = ['RandomCLIPGenerator']


@MODELS.register_module()
class RandomCLIPGenerator(CLIPGenerator):
    """``CLIPGenerator`` with a frozen, randomly initialised CLIP image tower.

    Args:
        img_size (int): input side in pixels.
        patch_size (int): patch side in pixels.
        width (int): token width; CLIP gives its image tower ``width // 64`` heads, so a
            multiple of 64.
        depth (int): transformer layers.
        out_dim (int): feature size of the targets (ViT-B/16 CLIP: 512).
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, width: int = 64,
                 depth: int = 1, out_dim: int = 512) -> None:
        if width < 64 or width % 64:
            raise ValueError(f'RandomCLIPGenerator: width={width} must be a multiple of 64 '
                             '(CLIP gives its image tower width // 64 heads)')
        nn.Module.__init__(self)  # CLIPGenerator.__init__ would load a checkpoint
        self.tokenizer_path = None
        # the text tower is unused by the generator: the smallest CLIP allows
        self.tokenizer = CLIP(out_dim, img_size, depth, width, patch_size, context_length=1,
                              vocab_size=1, transformer_width=64, transformer_heads=1,
                              transformer_layers=1).eval()
        self.tokenizer.requires_grad_(False)  # a teacher: no gradient, no optimizer state
