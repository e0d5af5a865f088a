"""tools/gpu_check.sh in its CPU dry form: every step runs (tiny) and the table is complete."""
import os
import subprocess

from tests.conftest import REPO


def test_gpu_check_dry_run_prints_the_whole_table(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', 'tools/gpu_check.sh', '--dry-run', '--out', str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {line.split(' | ')[0].strip('| '): line for line in proc.stdout.splitlines()
            if line.startswith('| ')}
    assert rows['machine'].startswith('| machine | CPU (dry run); torch ')
    assert 'dry run:' in rows['install']
    bench = rows['ViT-T/16, batch 2, fp32']
    assert 'FAMT ' in bench and 'x (FLOP ratio' in bench and 'img/s' in bench
    assert rows['training, fp32 (dry run)'].startswith(
        '| training, fp32 (dry run) | ok: refreshes before epochs 1 (16 images')
    assert (tmp_path / 'train' / 'epoch_3.pth').is_file()
