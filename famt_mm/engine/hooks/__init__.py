"""Training hooks."""
from .famt_weight_hook import FAMTWeightHook  # noqa: F401

__all__ = ['FAMTWeightHook']
