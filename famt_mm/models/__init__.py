"""FAMT math (plain tensor functions) and the registered mmpretrain modules."""
from . import famt_sampling, famt_weights  # noqa: F401
from .famt_algorithm import FAMT_ALGORITHMS, FAMTAlgorithm, FAMTSplit  # noqa: F401
from .famt_beit import FAMTBEiT, FAMTBEiTPretrainViT  # noqa: F401
from .famt_mae import FAMTMAE, FAMTPretrainDecoder, FAMTPretrainHead, FAMTViT  # noqa: F401
from .famt_simmim import (FAMTSimMIM, FAMTSimMIMHead, FAMTSimMIMLinearDecoder,  # noqa: F401
                          FAMTSimMIMViT, SimMIMViT)
from .gpu_decode_preprocessor import FAMTGPUDecodePreprocessor  # noqa: F401
from .mask_generator import FAMTMaskGenerator  # noqa: F401
from .two_view_preprocessor import FAMTTwoNormDataPreprocessor  # noqa: F401

__all__ = ['FAMTMAE', 'FAMTViT', 'FAMTPretrainDecoder', 'FAMTPretrainHead', 'FAMTMaskGenerator',
           'FAMTSimMIM', 'FAMTSimMIMViT', 'FAMTSimMIMLinearDecoder', 'FAMTSimMIMHead',
           'SimMIMViT', 'FAMTGPUDecodePreprocessor']
