"""Training hooks."""
from .famt_weight_hook import FAMTWeightHook  # noqa: F401
from .famt_visualization_hook import FAMTVisualizationHook  # noqa: F401
from .nonfinite_loss_hook import FAMTNonFiniteLossHook  # noqa: F401
from .resume_batch_hook import ResumeBatchCheckHook  # noqa: F401

__all__ = ['FAMTWeightHook', 'FAMTVisualizationHook', 'FAMTNonFiniteLossHook',
           'ResumeBatchCheckHook']
