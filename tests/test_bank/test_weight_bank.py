"""WeightBank over its storages (inline here; the file one: test_bank_file.py), the storage
registry and setting, the checkpoint format and its validation, the one-process gather,
fingerprints."""
import re

import pytest
import torch

from famt_mm.bank import (BANK_FORMAT_VERSION, BANK_STORAGES, FILE_BANK_BYTES, BankStorage,
                          FileBankStorage, InlineBankStorage, WeightBank, check_ranks_agree,
                          check_storage_setting, dataset_fingerprint, gather_by_index,
                          maps_sha1, quantize_weights, register_storage, storage_kind)


def _maps(n=6, hw=(3, 4), dtype='float16', seed=0):
    g = torch.Generator().manual_seed(seed)
    return quantize_weights(torch.rand(n, hw[0] * hw[1], generator=g) + 0.01,
                            dtype).view(n, *hw)


def test_rows_follow_the_index_and_a_new_set_replaces_the_device_copy():
    maps = _maps()
    bank = WeightBank.from_maps(maps, epoch=3)
    assert (bank.num_samples, bank.grid_hw, bank.dtype, bank.epoch) == (6, (3, 4),
                                                                       torch.float16, 3)
    assert bank.nbytes == 6 * 12 * 2
    idx = torch.tensor([5, 0, 5])
    assert torch.equal(bank.get_rows(idx, 'cpu'), maps[idx])
    other = _maps(seed=1)
    bank.set_all(other, epoch=4)  # a refresh: the cached copy must not be served again
    assert torch.equal(bank.get_rows(idx, 'cpu'), other[idx]) and bank.epoch == 4
    with pytest.raises(ValueError, match=r'got maps \(6, 4, 3\)'):
        bank.set_all(other.view(6, 4, 3))
    with pytest.raises(RuntimeError, match='empty'):
        WeightBank(6, (3, 4)).get_rows(idx)


def test_state_round_trip_is_bit_identical_for_both_dtypes():
    for dtype in ('float16', 'uint8'):
        saved = WeightBank.from_maps(_maps(dtype=dtype), epoch=2)
        state = saved.state_dict('fp')
        assert state['version'] == BANK_FORMAT_VERSION and state['grid_hw'] == (3, 4)
        fresh = WeightBank(6, (3, 4), 'float16')
        assert fresh.check_state(state, 'fp') is None
        fresh.load_state_dict(state)
        assert torch.equal(fresh.maps, saved.maps) and fresh.dtype == saved.dtype
        assert fresh.checksum() == saved.checksum() and fresh.epoch == 2
    assert WeightBank.has_maps(state) and not WeightBank.has_maps(
        WeightBank(6, (3, 4)).state_dict('fp'))


@pytest.mark.parametrize('change, match', [
    (dict(version=0), 'format version 0'),
    (dict(num_samples=7), 'computed on 7 images but the training set has 6'),
    (dict(grid_hw=(4, 4)), r'has \(4, 4\) patch grids but the model uses \(3, 4\)'),
    (dict(bank=torch.zeros(6, 3, 2, dtype=torch.float16)), r'tensor is \(6, 3, 2\)'),
    (dict(bank=torch.zeros(6, 3, 4)), 'expected .* float16 or uint8'),
    (dict(fingerprint='other'), 'different training set'),
])
def test_check_state_names_what_does_not_fit(change, match):
    state = dict(WeightBank.from_maps(_maps()).state_dict('fp'), **change)
    problem = WeightBank(6, (3, 4)).check_state(state, 'fp')
    assert problem is not None and re.search(match, problem), problem


def test_check_state_refuses_nan():
    state = WeightBank.from_maps(_maps()).state_dict('fp')
    state['bank'] = state['bank'].clone()
    state['bank'][2, 1, 1] = float('nan')
    assert 'NaN / inf' in WeightBank(6, (3, 4)).check_state(state, 'fp')


def test_one_process_gather_orders_rows_and_names_missing_images():
    maps = _maps()
    order = torch.tensor([4, 1, 0, 5, 3, 2])
    assert torch.equal(gather_by_index(order, maps[order], 6), maps)
    with pytest.raises(RuntimeError, match=r'left 2 images without weights \(e.g. \[2, 4\]\)'):
        gather_by_index(torch.tensor([0, 1, 3, 5]), maps[[0, 1, 3, 5]], 6)
    assert check_ranks_agree('abc') == ['abc']


def test_fingerprint_sees_order_and_content():
    class Listed:
        def __init__(self, paths):
            self.data_list = [dict(img_path=p, gt_label=0) for p in paths]

        def __len__(self):
            return len(self.data_list)
    a = dataset_fingerprint(Listed(['x.png', 'y.png']))
    assert a == dataset_fingerprint(Listed(['x.png', 'y.png']))
    assert a != dataset_fingerprint(Listed(['y.png', 'x.png']))
    assert a != dataset_fingerprint(Listed(['x.png', 'z.png']))


def test_bank_storage_setting_picks_the_storage():
    assert sorted(BANK_STORAGES) == ['file', 'inline']
    assert storage_kind('auto', FILE_BANK_BYTES - 1) == 'inline'
    assert storage_kind('auto', FILE_BANK_BYTES) == 'file'
    assert storage_kind('file', 1) == 'file' and storage_kind('inline', 2**40) == 'inline'
    with pytest.raises(ValueError, match="bank_storage='shm', use 'auto', 'file' or 'inline'"):
        check_storage_setting('shm')


def test_checkpoint_formats_keep_their_keys():
    # the keys checkpoints written before the storage interface hold: both still restore
    common = {'bank_epoch', 'num_samples', 'grid_hw', 'fingerprint', 'version', 'bank'}
    inline = WeightBank.from_maps(_maps(), epoch=1).state_dict('fp')
    assert set(inline) == common and inline['version'] == BANK_FORMAT_VERSION == 1
    assert WeightBank.storage_kind(inline) == 'inline'
    assert WeightBank.storage_kind(dict(version=2)) == 'file'
    assert WeightBank.storage_kind(dict(version=7)) is None


class RowListStorage(BankStorage):
    """A third storage, written in the test the way a shared-memory one would be: one class."""

    kind, format_version = 'test_rows', 99

    def __init__(self):
        self.rows = None

    filled = property(lambda self: self.rows is not None)
    maps = property(lambda self: None if self.rows is None else torch.stack(self.rows))

    def write(self, maps, epoch):
        self.rows = list(maps.clone())

    def get_rows(self, sample_idx, device):
        return torch.stack([self.rows[i] for i in sample_idx.tolist()]).to(device)

    def checksum(self):
        return maps_sha1(self.maps)

    def state(self):
        return dict(version=self.format_version, bank=None, bank_rows=self.rows)

    def check(self, state, shape, checkpoint=None):
        return None if len(state['bank_rows']) == shape[0] else 'wrong number of rows'

    def restore(self, state, checkpoint=None):
        self.rows = list(state['bank_rows'])


def test_a_new_storage_is_one_class_behind_the_same_bank():
    register_storage(RowListStorage)
    try:
        with pytest.raises(ValueError, match='already taken by RowListStorage'):
            register_storage(type('Other', (RowListStorage, ), {}))
        assert storage_kind('test_rows', 1) == 'test_rows'
        maps = _maps(dtype='uint8')
        bank = WeightBank(6, (3, 4), storage=RowListStorage())
        bank.set_all(maps, epoch=5)
        idx = torch.tensor([3, 3, 0])
        assert torch.equal(bank.get_rows(idx, 'cpu'), maps[idx]) and bank.dtype == torch.uint8
        assert torch.equal(bank.get_weights(idx), maps[idx].float() / 255)
        assert bank.checksum() == WeightBank.from_maps(maps).checksum()
        state = bank.state_dict('fp')
        assert WeightBank.has_maps(dict(state, bank_file='x'))
        assert WeightBank.storage_kind(state) == 'test_rows'
        fresh = WeightBank(6, (3, 4))
        with pytest.raises(ValueError, match='a test_rows bank state needs that storage, this '
                           'bank uses inline'):
            fresh.check_state(state, 'fp')
        fresh.use_storage(RowListStorage())
        assert fresh.check_state(state, 'fp') is None
        fresh.load_state_dict(state)
        assert torch.equal(fresh.maps, maps) and fresh.epoch == 5 and fresh.dtype == torch.uint8
    finally:
        BANK_STORAGES.pop('test_rows', None)


def test_use_storage_lets_the_previous_one_go():
    bank = WeightBank.from_maps(_maps(), epoch=1)
    inline = bank.storage
    bank.use_storage(inline)  # the same storage: kept
    assert bank.filled
    bank.use_storage(FileBankStorage())
    assert not inline.filled and not bank.filled and isinstance(inline, InlineBankStorage)
