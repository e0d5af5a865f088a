"""FAMT math (plain tensor functions) and the registered mmpretrain modules."""
from . import famt_sampling, famt_weights  # noqa: F401
from .famt_algorithm import FAMT_ALGORITHMS, FAMTAlgorithm, FAMTSplit  # noqa: F401
from .famt_beit import FAMTBEiT, FAMTBEiTPretrainViT  # noqa: F401
from .famt_cae import FAMTCAE, FAMTCAENeck, FAMTCAEViT  # noqa: F401
from .famt_eva import FAMTEVA  # noqa: F401
from .famt_mae import FAMTMAE, FAMTPretrainDecoder, FAMTPretrainHead, FAMTViT  # noqa: F401
from .famt_maskfeat import FAMTMaskFeat, FAMTMaskFeatViT  # noqa: F401
from .famt_milan import FAMTMILAN, FAMTMILANPretrainDecoder, FAMTMILANViT  # noqa: F401
from .famt_mff import FAMTMFF, FAMTMFFViT  # noqa: F401
from .famt_simmim import (FAMTSimMIM, FAMTSimMIMHead, FAMTSimMIMLinearDecoder,  # noqa: F401
                          FAMTSimMIMViT, SimMIMViT)
from .gpu_decode_preprocessor import FAMTGPUDecodePreprocessor  # noqa: F401
from .mask_generator import FAMTMaskGenerator  # noqa: F401
from .random_teachers import RandomCLIPGenerator  # noqa: F401
from .two_view_preprocessor import FAMTTwoNormDataPreprocessor  # noqa: F401

__all__ = ['FAMTMAE', 'FAMTViT', 'FAMTPretrainDecoder', 'FAMTPretrainHead', 'FAMTMaskGenerator',
           'FAMTSimMIM', 'FAMTSimMIMViT', 'FAMTSimMIMLinearDecoder', 'FAMTSimMIMHead',
           'SimMIMViT', 'FAMTGPUDecodePreprocessor', 'FAMTCAE', 'FAMTCAEViT', 'FAMTCAENeck',
           'FAMTTwoNormDataPreprocessor']
