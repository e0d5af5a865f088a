"""The bank file: written once and atomically, referenced by checkpoints, verified on resume,
and one copy in memory for every process that maps it."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from famt_mm.bank import (BANK_FILE_FORMAT_VERSION, FileBankStorage, InlineBankStorage,
                          WeightBank, file_checksum, quantize_weights, write_bank_file)


def _maps(n=6, hw=(3, 4), dtype='float16', seed=0):
    g = torch.Generator().manual_seed(seed)
    return quantize_weights(torch.rand(n, hw[0] * hw[1], generator=g) + 0.01,
                            dtype).view(n, *hw)


@pytest.mark.parametrize('dtype', ['float16', 'uint8'])
def test_file_bank_reads_rows_and_checkpoints_reference_it(tmp_path, dtype):
    maps = _maps(dtype=dtype)
    bank = WeightBank(6, (3, 4), storage=FileBankStorage(str(tmp_path)))
    bank.set_all(maps, epoch=2)  # one process: it writes the file and maps it
    name = f'bank_epoch_0002.{dtype}.npy'
    assert os.listdir(tmp_path / 'famt_bank') == [name]  # no .tmp left
    path = str(tmp_path / 'famt_bank' / name)
    sha1 = bank.checksum()
    assert sha1 == WeightBank.from_maps(maps).checksum() == file_checksum(path)[0]
    assert bank.file == path and bank.rows_on_host
    idx = torch.tensor([5, 0, 5])
    assert torch.equal(bank.get_rows(idx, 'cpu'), maps[idx]) and bank.dtype == maps.dtype
    assert torch.equal(bank.maps, maps)
    state = bank.state_dict('fp')
    assert state['bank'] is None and state['bank_file'] == name
    assert state['version'] == BANK_FILE_FORMAT_VERSION and WeightBank.has_maps(state)
    assert set(state) == {'bank_epoch', 'num_samples', 'grid_hw', 'fingerprint', 'version',
                          'bank', 'bank_file', 'bank_path', 'bank_sha1', 'bank_dtype'}
    assert len(repr(state)) < 1000  # a reference, not the maps
    # a moved run: found beside the checkpoint, not at the path it was written to
    moved = tmp_path / 'moved' / 'famt_bank'
    moved.mkdir(parents=True)
    os.replace(path, moved / name)
    ckpt = str(tmp_path / 'moved' / 'epoch_3.pth')
    fresh = WeightBank(6, (3, 4), storage=FileBankStorage(str(tmp_path / 'new_run')))
    assert fresh.check_state(state, 'fp', ckpt) is None
    fresh.load_state_dict(state, ckpt)
    assert torch.equal(fresh.maps, maps) and fresh.epoch == 2 and fresh.checksum() == sha1
    assert fresh.file == str(moved / name)
    assert torch.equal(WeightBank.from_file(fresh.file, sha1, 2, verify=True).maps, maps)


def test_file_problems_are_named(tmp_path):
    maps = _maps()
    bank = WeightBank(6, (3, 4), storage=FileBankStorage(str(tmp_path)))
    bank.set_all(maps, 1)
    path = bank.file
    state = bank.state_dict('fp')
    mm = np.load(path, mmap_mode='r+')
    mm[3, 1, 1] = 0.5 * mm[3, 1, 1] + 0.25  # one cell changed after the checkpoint
    mm.flush()
    del mm
    assert 'has changed since the checkpoint was written' in bank.check_state(state, 'fp')
    os.remove(path)
    elsewhere = str(tmp_path / 'elsewhere' / 'epoch_1.pth')
    problem = bank.check_state(state, 'fp', elsewhere)
    assert 'bank_epoch_0001.float16.npy that the checkpoint references is missing' in problem
    assert str(tmp_path / 'elsewhere' / 'famt_bank') in problem
    assert bank.storage.restore_fix([problem]).startswith('Put the file back beside the '
                                                          'checkpoint (famt_bank/)')
    other = str(tmp_path / 'other.npy')
    sha1 = write_bank_file(other, maps)
    with pytest.raises(ValueError, match=r'holds \(6, 3, 4\)'):
        FileBankStorage().open(other, sha1, shape=(6, 4, 3))
    with pytest.raises(ValueError, match='no work_dir'):
        FileBankStorage().write(maps, 1)


def test_rotation_keeps_the_newest_and_the_checkpointed_file(tmp_path):
    storage = FileBankStorage(str(tmp_path), keep=1)
    bank = WeightBank(6, (3, 4), storage=storage)
    bank_dir = tmp_path / 'famt_bank'

    def files():
        return sorted(os.listdir(bank_dir))
    bank.set_all(_maps(seed=1), 1)
    bank.state_dict('fp')  # a checkpoint saved now references epoch 1's file
    bank.set_all(_maps(seed=2), 2)
    assert files() == ['bank_epoch_0001.float16.npy', 'bank_epoch_0002.float16.npy']
    open(bank_dir / 'bank_epoch_0003.float16.npy.tmp', 'wb').write(b'partial')  # a killed write
    bank.set_all(_maps(seed=3), 3)  # rank 0 removes the stray before it writes
    assert files() == ['bank_epoch_0001.float16.npy', 'bank_epoch_0003.float16.npy']
    storage.referenced(bank.state_dict('fp'))  # a checkpoint now references epoch 3's file
    bank.set_all(_maps(seed=4), 4)
    assert files() == ['bank_epoch_0003.float16.npy', 'bank_epoch_0004.float16.npy']
    everything = WeightBank(6, (3, 4), storage=FileBankStorage(str(tmp_path / 'all'), keep=-1))
    for epoch in range(3):
        everything.set_all(_maps(seed=epoch), epoch)
    assert len(os.listdir(tmp_path / 'all' / 'famt_bank')) == 3


# A reader process: numpy only (fast to start). Driven through its pipes so that both readers
# measure while both hold the mapping: it maps the bank, touches every row, says 'ready', waits
# for 'measure' on stdin, reports what the mapping added to its RSS and USS
# (/proc/self/smaps_rollup), and exits only when stdin closes, after both have measured.
READER = """
import sys, numpy as np
def mem():
    f = dict((l.split()[0].rstrip(':'), int(l.split()[1]) * 1024)
             for l in open('/proc/self/smaps_rollup') if l.strip().endswith('kB'))
    return f['Rss'], f['Private_Clean'] + f['Private_Dirty']
rss0, uss0 = mem()
mm = np.load(sys.argv[1], mmap_mode='r')
total = sum(int(mm[i:i + 4096].sum(dtype=np.int64)) for i in range(0, mm.shape[0], 4096))
print('ready', flush=True)
assert sys.stdin.readline().strip() == 'measure'
rss, uss = mem()
print(total, rss - rss0, uss - uss0, flush=True)
sys.stdin.read()  # EOF: the test has both measurements
"""


@pytest.mark.skipif(not osp.exists('/proc/self/smaps_rollup'), reason='needs Linux /proc')
def test_two_reader_processes_share_one_copy(tmp_path):
    n, hw = 160_000, (14, 14)  # 31 MB of uint8 maps
    maps = torch.randint(1, 255, (n, *hw), dtype=torch.uint8)
    path = str(tmp_path / 'bank.npy')
    write_bank_file(path, maps)
    del maps
    procs = [subprocess.Popen([sys.executable, '-c', READER, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        # barrier: both have mapped and touched every page before either measures
        assert [p.stdout.readline().strip() for p in procs] == ['ready', 'ready']
        for p in procs:
            p.stdin.write('measure\n')
            p.stdin.flush()
        results = [[int(v) for v in p.stdout.readline().split()] for p in procs]
        for p in procs:  # both have measured: now they may exit
            p.stdin.close()
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    size = n * hw[0] * hw[1]
    assert results[0][0] == results[1][0]
    for _, rss, uss in results:
        # the file's pages are resident in both (RSS) but private to neither (USS): one copy
        assert rss > size and uss < 0.25 * size, (rss, uss, size)


def test_bank_scale_tool_measures_a_small_bank(tmp_path):
    from tests.conftest import run_tool
    out = run_tool(['tools/analysis/bank_scale.py', '--images', '20000', '--dtype', 'uint8',
                    '--batches', '5', '--dir', str(tmp_path)]).stdout
    assert 'ckpt_famt_bytes_before: 3920000' in out and 'reader_uss_MiB' in out
    assert not list(tmp_path.iterdir())  # the bank file is deleted afterwards


def test_file_rows_follow_each_new_file_and_refuse_bad_indices(tmp_path):
    bank = WeightBank(6, (3, 4), storage=FileBankStorage(str(tmp_path)))
    idx = torch.tensor([4, 4, 0, 5, 1])
    for epoch in (1, 2):  # a refresh writes a new file and switches the bank to it
        maps = _maps(seed=epoch)
        bank.set_all(maps, epoch)
        assert bank.rows_on_host and bank.file.endswith(f'bank_epoch_{epoch:04d}.float16.npy')
        rows = bank.get_rows(idx, 'cpu')
        assert torch.equal(rows, maps[idx]) and rows.dtype == torch.float16
    for bad in ([6], [-1]):
        with pytest.raises(IndexError, match='outside 0..5'):
            bank.get_rows(torch.tensor(bad), 'cpu')
    bank.use_storage(InlineBankStorage())
    bank.set_all(maps)
    assert not bank.rows_on_host and torch.equal(bank.get_rows(idx, 'cpu'), maps[idx])
