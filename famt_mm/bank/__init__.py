"""The FAMT weight bank: one quantised weight map per training image (docs/method.md section 6).

``WeightBank`` (storage, checksum, checkpoint format and its validation), ``gather_by_index``
and ``check_ranks_agree`` (the distributed side), ``dataset_fingerprint`` (which training set
a bank belongs to). No mmpretrain and no Runner inside: the hook and the mask generator use it.
"""
from .bank_file import (BankFileError, bank_file_name, file_checksum, open_bank_file,
                        read_through, remove_stray_temporaries, write_bank_chunks,
                        write_bank_file)
from .fingerprint import dataset_fingerprint
from .gather import check_ranks_agree, gather_by_index
from .weight_bank import (BANK_DTYPES, BANK_FILE_FORMAT_VERSION, BANK_FORMAT_VERSION,
                          WeightBank)

__all__ = ['WeightBank', 'BANK_FORMAT_VERSION', 'BANK_DTYPES', 'gather_by_index',
           'check_ranks_agree', 'dataset_fingerprint', 'BANK_FILE_FORMAT_VERSION',
           'bank_file_name', 'write_bank_file', 'write_bank_chunks', 'open_bank_file',
           'file_checksum', 'BankFileError', 'read_through', 'remove_stray_temporaries']
