"""What a masked-image-modelling algorithm must offer to use FAMT (MAE today, SimMIM alike).

``FAMTWeightHook``, the weight bank and the pictures use a model only through these four
names, so one mask generator, one bank and one hook serve every algorithm that has them:

* ``mask_generator``: a ``FAMTMaskGenerator`` (it holds the bank and draws the sets);
* ``grid_hw``: (h, w), the masking grid: the sets are drawn on it and the bank stores one
  h x w map per image (MAE: the 16-px patch grid; SimMIM: its 32-px masking units);
* ``input_hw``: (H, W) in pixels, the image size the model takes; the refresh resizes whole
  images to it and the training crop must produce it;
* ``compute_famt_weights(inputs)``: inputs B x 3 x H x W (normalised, whole images) ->
  (weights B x h x w float32 > 0, fallback B bool: maps that fell back to uniform).

See docs/method.md section 1 for what the weights are and docs/design.md for the pieces.
"""
from typing import Protocol, Tuple, runtime_checkable

import torch

#: The names :class:`FAMTModel` requires.
FAMT_MODEL_ATTRS = ('mask_generator', 'grid_hw', 'input_hw', 'compute_famt_weights')


@runtime_checkable
class FAMTModel(Protocol):
    """The FAMT model interface (see the module docstring)."""

    mask_generator: torch.nn.Module
    grid_hw: Tuple[int, int]
    input_hw: Tuple[int, int]

    def compute_famt_weights(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        ...


def is_famt_model(model) -> bool:
    """Whether ``model`` has every name of :class:`FAMTModel`."""
    return all(hasattr(model, name) for name in FAMT_MODEL_ATTRS)


def check_famt_model(model, user: str):
    """Return ``model`` if it is a FAMT model, else raise ``TypeError`` naming what it lacks."""
    missing = [name for name in FAMT_MODEL_ATTRS if not hasattr(model, name)]
    if missing:
        raise TypeError(f'{user} needs a FAMT model (FAMTMAE, or any model with '
                        f'{", ".join(FAMT_MODEL_ATTRS)}; famt_mm/models/famt_model.py), got '
                        f'{type(model).__name__} without {", ".join(missing)}')
    return model
