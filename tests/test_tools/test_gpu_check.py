"""tools/gpu_check.sh: its plan (--dry-run), its failure checks on real-looking log text, and
its CPU smoke run (every step tiny, through the real Runner; the checks pass)."""
import json
import os
import subprocess

from famt_mm.analysis import gpu_check as gc
from tests.conftest import REPO

HEAD = ('12/06 15:27:34 - mmengine - INFO - FAMT: random masking until epoch 1, then FAMT '
        'masking; 2 weight refresh(es), every 1 epochs; mask_ratio=0.45, throw_ratio=0.4\n'
        '12/06 15:27:35 - mmengine - INFO - Epoch(train) [1][2/2]  lr: 1.2757e-06  eta: '
        '0:00:00  time: 0.2063  data_time: 0.0901  memory: 20553  loss: 1.0373\n')


def refresh(epoch, fallback=0, file=True):
    where = (f' in /data/work_dirs/in1k/famt_bank/bank_epoch_{epoch:04d}.float16.npy'
             if file else '')
    return (f'12/06 15:27:36 - mmengine - INFO - FAMT refresh before epoch {epoch}: 512 images '
            f'in 1.9s (269.5 img/s), fallback to uniform: {fallback}, unreadable: 0, '
            'normalised entropy 0.9848, mass in top 20% patches 0.315, bank 0.19 MiB' + where
            + '\n')


def report(wrapper='AmpOptimWrapper', amp='float16', forward='float16', scale='65536.0',
           famt=16, nonfinite=0, world=1):
    return (f'12/06 15:27:37 - mmengine - INFO - gpu_check report: optim_wrapper={wrapper} '
            f'amp_dtype={amp} forward_dtypes={forward} loss_scale={scale} iterations=24 '
            f'famt_iterations={famt} nonfinite_losses={nonfinite} world_size={world} '
            'device=cuda:0 (NVIDIA H100 80GB HBM3)\n')


GOOD = HEAD + refresh(1) + refresh(2) + report()


def reasons(log, **expect):
    return gc.check_training_log(log, **expect)[1]


def test_a_good_amp_run_passes():
    summary, found = gc.check_training_log(GOOD, amp='float16')
    assert found == []
    assert 'AmpOptimWrapper float16' in summary and '(file)' in summary


def test_each_failure_is_named():
    assert reasons(HEAD + refresh(1, fallback=3) + refresh(2) + report(), amp='float16') == [
        'fallback to uniform: 3 weight maps (NaN / inf / zero)']
    nan_line = HEAD.replace('loss: 1.0373', 'loss: nan')
    assert 'non-finite loss in the log' in reasons(nan_line + refresh(1) + refresh(2)
                                                   + report(nonfinite=1), amp='float16')
    crashed = HEAD + refresh(1) + ('Traceback (most recent call last):\n  File "tools/train.py"'
                                   ', line 150, in <module>\nRuntimeError: CUDA error: an '
                                   'illegal memory access was encountered\n')
    found = reasons(crashed, rc=1, amp='float16')
    assert found[0] == ('exited with status 1: RuntimeError: CUDA error: an illegal memory '
                        'access was encountered')
    assert '1 refresh(es) logged, 2 expected' in found
    dropped = (HEAD + '12/06 15:27:30 - mmengine - WARNING - no usable GPU: AmpOptimWrapper -> '
               'OptimWrapper (AMP needs a GPU)\n' + refresh(1) + refresh(2)
               + report('OptimWrapper', 'none', 'float32', 'none'))
    found = reasons(dropped, amp='float16')
    assert 'AMP was dropped (AmpOptimWrapper -> OptimWrapper)' in found
    assert 'AMP not kept: optim wrapper OptimWrapper' in found
    assert reasons(GOOD.replace('forward_dtypes=float16', 'forward_dtypes=float32'),
                   amp='float16') == ['AMP not in float16: wrapper dtype float16, forward '
                                      'outputs float32']
    assert reasons(HEAD + refresh(1) + refresh(2) + report(scale='none'), amp='float16') == [
        'fp16 AMP without a loss scale']
    assert reasons(HEAD + refresh(1, file=False) + refresh(2, file=False) + report(),
                   amp='float16') == ['the weight bank was not stored in a file']
    assert reasons(HEAD + refresh(1) + refresh(2) + report(famt=0), amp='float16') == [
        'no FAMT-phase iteration (the bank rows were never read)']
    assert reasons(GOOD, amp='float16', world_size=2) == ['world size 1, 2 expected']
    assert reasons(HEAD + refresh(1) + refresh(2), amp='float16') == [
        'no gpu_check report line (did the run finish training?)']


def test_benchmark_failures_are_named():
    cell, found = gc.check_benchmark(None, 1, 'Traceback ...\ntorch.OutOfMemoryError: CUDA out '
                                     'of memory. Tried to allocate 2.00 GiB\n')
    assert cell == 'FAIL' and found == [
        'exited with status 1: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate '
        '2.00 GiB']
    result = dict(setup=dict(batch=512), famt=dict(step=dict(median_s=0.09), last_loss=0.61),
                  mae=dict(step=dict(median_s=0.14), last_loss=float('nan')),
                  ratios=dict(speedup=1.55, flop_ratio=1.62),
                  refresh=dict(images_per_s=9000.0))
    cell, found = gc.check_benchmark(result, 0, '')
    assert found == ['mae loss nan in the benchmark (not finite)']
    assert cell.startswith('FAMT 90 ms (5689 img/s), MAE 140 ms (3657 img/s): 1.55x')


def test_the_table_fails_on_a_missing_or_failed_step(tmp_path, capsys):
    (tmp_path / 'in1k_fp16.log').write_text(GOOD)
    (tmp_path / 'in1k_fp16.rc').write_text('0\n')
    (tmp_path / 'in1k_bf16.log').write_text(GOOD.replace('fallback to uniform: 0',
                                                         'fallback to uniform: 7', 1))
    (tmp_path / 'in1k_bf16.rc').write_text('0\n')
    plan = dict(head=[['machine', 'NVIDIA H100 80GB HBM3']], benchmarks={'b': 'b'},
                trainings={'in1k_fp16': dict(amp='float16'),
                           'in1k_bf16': dict(amp='float16')}, data=True)
    (tmp_path / 'plan.json').write_text(json.dumps(plan))
    assert gc.main([str(tmp_path), str(tmp_path / 'plan.json')]) == 1
    out = capsys.readouterr().out
    assert '| training in1k_fp16 | ok: AmpOptimWrapper float16' in out
    assert ('FAIL: training in1k_bf16: fallback to uniform: 7 weight maps (NaN / inf / zero)'
            in out)
    assert 'FAIL: benchmark b: exited with status 127' in out  # it never ran
    assert 'FAIL: data pipelines: benchmark_data.py exited with status 127' in out


def run_script(*args, env=None):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run(['bash', 'tools/gpu_check.sh', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    proc = run_script('--dry-run', '--out', str(tmp_path), env=dict(GPUS_PLAN='2'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for step in ('install', 'data', 'imagenet', 'bench_b', 'bench_l', 'in1k_fp16',
                 'in1k_bf16_gpudecode', 'in1k_bf16_2gpu'):
        assert f'[gpu_check] {step}:' in out, step
    assert '--precision bf16' in out and '--batch 512' in out and '--gpu' in out
    assert "dtype='float16'" in out and "dtype='bfloat16'" in out
    assert "decode='gpu'" in out and "bank_storage='file'" in out
    assert 'tools/dist_train.sh' in out and 'FAMT_ALLOW_CPU=0' in out
    assert '[gpu_check] install: bash tools/install.sh' in out
    assert not list(tmp_path.glob('*.log'))  # nothing ran
    one = run_script('--dry-run', '--out', str(tmp_path))
    assert 'in1k_bf16_2gpu: not run, 1 GPU(s) (needs 2)' in one.stdout


def test_smoke_run_goes_through_every_step(tmp_path):
    proc = run_script('--smoke', '--out', str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {line.split(' | ')[0].strip('| '): line for line in proc.stdout.splitlines()
            if line.startswith('| ')}
    assert rows['machine'].startswith('| machine | CPU (smoke); 0 GPU(s)')
    assert 'FAMT ' in rows['ViT-T/16, batch 2, fp32']
    for name in ('in1k_fp16', 'in1k_bf16_gpudecode'):
        row = rows[f'training {name}']
        assert row.startswith(f'| training {name} | ok: OptimWrapper'), row
        assert '(4 FAMT)' in row and row.count('(file)') == 2
    assert 'famt decode=cv2-reduced' in rows['data pipelines, img/s per core']
    assert 'not run: this machine has 0 GPU(s)' in rows['two processes']
    assert (tmp_path / 'train_in1k_bf16_gpudecode' / 'epoch_3.pth').is_file()
