"""``FAMTTwoNormDataPreprocessor``: mmpretrain's ``TwoNormDataPreprocessor`` (BEiT, CAE) that
also takes the refresh pass's single view.

Training batches hold two views (the encoder's and the tokenizer's, each normalised its own
way), as mmpretrain's. The FAMT refresh hands whole images, one view, stacked B x 3 x H x W:
mmpretrain's class would take the first two IMAGES of that batch for the two views; this one
normalises the batch as the encoder's view (``mean`` / ``std``) and returns it as a tensor,
which is what ``compute_famt_weights`` takes.
"""
import torch
from mmpretrain.models.utils import TwoNormDataPreprocessor
from mmpretrain.registry import MODELS

__all__ = ['FAMTTwoNormDataPreprocessor']


@MODELS.register_module()
class FAMTTwoNormDataPreprocessor(TwoNormDataPreprocessor):
    """``TwoNormDataPreprocessor`` with a single-view path (same arguments).

    ``forward(data)``: ``data['inputs']`` a list of two views (each B x 3 x H x W, or a list
    of per-sample 3 x H x W) -> mmpretrain's list of two normalised views; a tensor
    B x 3 x H x W (one view, the refresh) -> a tensor normalised with ``mean`` / ``std``.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if not isinstance(data['inputs'], torch.Tensor):
            return super().forward(data, training)
        data = self.cast_data(data)
        inputs = data['inputs']
        if self._channel_conversion:
            inputs = inputs[:, [2, 1, 0], ...]
        inputs = inputs.float()
        if self._enable_normalize:
            inputs = (inputs - self.mean) / self.std
        return {'inputs': inputs, 'data_samples': data.get('data_samples')}
