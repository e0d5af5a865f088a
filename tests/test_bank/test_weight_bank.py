"""WeightBank storage, checkpoint format and validation, the one-process gather, fingerprints."""
import re

import pytest
import torch

from famt_mm.bank import (BANK_FORMAT_VERSION, WeightBank, check_ranks_agree,
                          dataset_fingerprint, gather_by_index)
from famt_mm.models.famt_weights import quantize_weights


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
