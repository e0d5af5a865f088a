"""``TwoNormDataPreprocessor`` that also takes the one-view batches of the FAMT refresh and
pictures (whole images, no second view): BEiT- and CAE-style recipes normalise a training
pair [encoder view, tokenizer view] with two mean / std pairs, which mmpretrain's class
cannot apply to a single stacked batch (it would index the batch as if it were the pair)."""
import torch
from mmpretrain.models.utils import TwoNormDataPreprocessor
from mmpretrain.registry import MODELS

__all__ = ['FAMTTwoNormDataPreprocessor']


@MODELS.register_module()
class FAMTTwoNormDataPreprocessor(TwoNormDataPreprocessor):
    """Same arguments as ``TwoNormDataPreprocessor``.

    ``forward(data)``: ``data['inputs']`` a pair of views (each B x 3 x H x W, or lists of
    3 x H x W) -> [view normalised with ``mean`` / ``std``, view with ``second_mean`` /
    ``second_std``], as mmpretrain's; one batch (a B x 3 x H x W tensor or a list of
    3 x H x W images, as the refresh collates them) -> that batch as one B x 3 x H x W
    tensor normalised with ``mean`` / ``std`` (the encoder's view).
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor) or (
                isinstance(inputs, (list, tuple)) and inputs and inputs[0].dim() == 3):
            return self.forward_one_view(data)
        return super().forward(data, training)

    def forward_one_view(self, data: dict) -> dict:
        """The encoder view's normalisation of one batch -> inputs B x 3 x H x W."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.stack(list(inputs))
        if self._channel_conversion:
            inputs = inputs[:, [2, 1, 0], ...]
        inputs = inputs.float()
        if self._enable_normalize:
            inputs = (inputs - self.mean) / self.std
        return {'inputs': inputs, 'data_samples': data.get('data_samples')}
