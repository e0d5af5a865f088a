"""famt_mm: FAMT masking and throwing for MAE pre-training in OpenMMLab.

Importing the package (``custom_imports=dict(imports=['famt_mm'])``) applies the
compatibility fixes for the modern torch stack and registers every module into
mmpretrain's registries.
"""
from .version import __version__  # noqa: F401
from . import compat  # noqa: F401,E402  (must run before any checkpoint is read)
from . import datasets, engine, models  # noqa: F401,E402
from . import transfer  # noqa: F401,E402
