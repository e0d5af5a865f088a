"""The FAMT weight bank: one quantised weight map per training image (docs/method.md section 6).

``WeightBank`` (layout checks, checkpoint format and its validation) over a ``BankStorage``
(``storage``: the interface; ``inline_storage``: a tensor per process; ``file_storage``: one
file per refresh, mapped by every process), the encoding of a map (``encoding``: quantise /
dequantise), the file format (``bank_file``), ``gather_by_index`` and ``check_ranks_agree``
(the distributed side), ``dataset_fingerprint`` (which training set a bank belongs to). No
mmpretrain and no Runner inside: the hook and the mask generator use it.
"""
from .bank_file import (BankFileError, file_checksum, open_bank_file, read_through,
                        remove_stray_temporaries, write_bank_chunks, write_bank_file)
from .encoding import BANK_DTYPES, QUANT_DTYPES, dequantize_weights, dtype_name, quantize_weights
from .file_storage import BANK_SUBDIR, FileBankStorage, bank_file_name
from .fingerprint import dataset_fingerprint
from .gather import check_ranks_agree, gather_by_index
from .inline_storage import InlineBankStorage
from .storage import (BANK_STORAGES, FILE_BANK_BYTES, BankStorage, check_storage_setting,
                      maps_sha1, register_storage, storage_kind)
from .weight_bank import BANK_FILE_FORMAT_VERSION, BANK_FORMAT_VERSION, WeightBank

__all__ = ['WeightBank', 'BANK_FORMAT_VERSION', 'BANK_FILE_FORMAT_VERSION', 'BankStorage',
           'BANK_STORAGES', 'register_storage', 'storage_kind', 'check_storage_setting',
           'FILE_BANK_BYTES', 'InlineBankStorage', 'FileBankStorage', 'BANK_SUBDIR',
           'maps_sha1', 'BANK_DTYPES', 'QUANT_DTYPES', 'dtype_name', 'quantize_weights',
           'dequantize_weights', 'gather_by_index', 'check_ranks_agree', 'dataset_fingerprint',
           'bank_file_name', 'write_bank_file', 'write_bank_chunks', 'open_bank_file',
           'file_checksum', 'BankFileError', 'read_through', 'remove_stray_temporaries']
