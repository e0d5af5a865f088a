"""Hooks, the non-finite-skipping optimizer wrapper, crash-safe checkpoint writing."""
from . import checkpointing  # noqa: F401  (registers the 'famt_atomic_local' file backend)
from .hooks import *  # noqa: F401,F403
from .optim_wrapper import FAMTOptimWrapper  # noqa: F401
