"""A bank file that is short, corrupt or missing is named (not an mmap / EOF error); a write
is fsynced and renamed, a killed one leaves a ``.tmp`` that the next refresh removes."""
import os

import numpy as np
import pytest
import torch

from famt_mm.bank import (BankFileError, FileBankStorage, WeightBank, file_checksum,
                          open_bank_file, read_through, remove_stray_temporaries,
                          write_bank_file)


def _written(tmp_path, n=50):
    maps = torch.rand(n, 4, 5).half()
    path = str(tmp_path / 'famt_bank' / 'bank_epoch_0003.float16.npy')
    return path, write_bank_file(path, maps), maps


def test_short_corrupt_and_missing_files_are_named(tmp_path):
    path, sha1, _ = _written(tmp_path)
    state = WeightBank.from_file(path, sha1).state_dict('fp')  # references the file
    bank = WeightBank(50, (4, 5), storage=FileBankStorage())
    assert bank.check_state(state, 'fp') is None
    os.truncate(path, os.path.getsize(path) - 7)  # a copy cut short
    for call in (open_bank_file, file_checksum):
        with pytest.raises(BankFileError, match=f'{path} is .* bytes, its header .*needs .*cut '
                           'short'):
            call(path)
    assert 'cut short' in bank.check_state(state, 'fp') and path in bank.check_state(state, 'fp')
    with open(path, 'wb') as f:
        f.write(b'\x00' * 300)  # garbage where the header was
    assert f'the FAMT weight bank file {path} is corrupt (no valid .npy header' in (
        bank.check_state(state, 'fp'))
    with open(path, 'wb') as f:
        f.write(b'')  # empty: what a full disk can leave
    assert 'is corrupt' in bank.check_state(state, 'fp')
    os.remove(path)
    assert 'that the checkpoint references is missing' in bank.check_state(state, 'fp')
    with pytest.raises(BankFileError, match=f'{path} does not exist'):
        open_bank_file(path)


def test_opening_a_file_verifies_by_one_sequential_read(tmp_path):
    path, sha1, maps = _written(tmp_path)
    header = os.path.getsize(path) - maps.numel() * 2
    assert read_through(path, header) == (sha1, maps.numel() * 2)
    bank = WeightBank.from_file(path, sha1, 3, verify=True)
    assert torch.equal(bank.maps, maps) and bank.epoch == 3 and bank.shape == (50, 4, 5)
    mm = np.load(path, mmap_mode='r+')
    mm[0, 0, 0] += 1
    mm.flush()
    del mm
    with pytest.raises(BankFileError, match='does not hold the bank just computed'):
        FileBankStorage().open(path, sha1, verify=True)


def test_write_leaves_no_temporary_and_stray_ones_are_removed(tmp_path):
    path, _, _ = _written(tmp_path)
    bank_dir = os.path.dirname(path)
    assert os.listdir(bank_dir) == [os.path.basename(path)]
    stray = path.replace('0003', '0004') + '.tmp'  # a write killed before its rename
    open(stray, 'wb').write(b'\x93NUMPY partial')
    assert remove_stray_temporaries(bank_dir) == [stray]
    assert os.listdir(bank_dir) == [os.path.basename(path)]
    assert remove_stray_temporaries(str(tmp_path / 'absent')) == []
