"""A rehearsal of the cluster path on one machine: several processes (torchrun, gloo on CPU), a
folder of ImageNet-size JPEGs, the ImageNet config shrunk on the command line, the file bank,
one rank SIGKILLed in the middle of a weight refresh, then ``--resume``.

:func:`rehearse` runs it and checks what a user's multi-GPU run relies on: the killed job ends
within seconds (no rank waits until a timeout), the resumed job redoes the interrupted refresh,
every rank ends with the same bank (SHA-1 per rank, gathered by the refresh's agreement check)
and the bank file on disk is the one the last checkpoint references. Used by
tools/analysis/rehearse_cluster.py (many images, 4 processes) and by a small CI test.
"""
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..bank import file_checksum
from ..datasets.imagenet_like_jpegs import make_imagenet_like_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'famt_mae_vit-b_in1k.py')


def shrink_options(data_root: str, max_epochs: int = 3, img_size: int = 64,
                   batch_size: int = 16, refresh_batch: int = 4,
                   dist_timeout: int = 60) -> List[str]:
    """--cfg-options that shrink configs/famt_mae_vit-b_in1k.py to a rehearsal: ViT-tiny
    (DeiT-T) on ``img_size`` crops (16 px patches), the JPEG folder, FAMT from epoch 2
    (counted from 1) with a refresh before every epoch into the file bank, the collective
    timeout ``dist_timeout``."""
    grid = (img_size // 16) ** 2
    options = {
        'model.backbone.arch': 'deit-tiny',  # 192-d (the smallest arch a name selects)
        'model.backbone.img_size': img_size,
        'model.neck.num_patches': grid, 'model.neck.embed_dim': 192,
        'model.neck.decoder_embed_dim': 32, 'model.neck.decoder_depth': 1,
        'model.neck.decoder_num_heads': 2,
        'train_dataloader.dataset.data_root': data_root,
        'train_dataloader.dataset.pipeline.1.scale': img_size,
        'train_dataloader.batch_size': batch_size, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': max_epochs,
        'custom_hooks.0.start_epoch': 1, 'custom_hooks.0.interval': 1,
        'custom_hooks.0.batch_size': refresh_batch, 'custom_hooks.0.num_workers': 0,
        'custom_hooks.0.log_interval': 1, 'custom_hooks.0.bank_storage': 'file',
        'custom_hooks.0.keep_banks': 1,
        'default_hooks.logger.interval': 10, 'default_hooks.checkpoint.max_keep_ckpts': -1,
        'env_cfg.dist_cfg.timeout': dist_timeout,
    }
    return [f'{k}={v}' for k, v in options.items()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> List[int]:
    """All processes below ``pid`` (from /proc)."""
    parents: Dict[int, int] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parents[int(entry)] = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        todo += kids
    return found


def _env_of(pid: int) -> Dict[str, str]:
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            items = f.read().split(b'\0')
    except OSError:
        return {}
    return dict(i.decode(errors='replace').split('=', 1) for i in items if b'=' in i)


def rank_pid(launcher_pid: int, rank: int) -> Optional[int]:
    """The pid of the training process of ``rank`` under a torchrun launched as
    ``launcher_pid`` (the process with RANK=rank whose parent has no RANK: not a loader
    worker)."""
    for pid in _descendants(launcher_pid):
        env = _env_of(pid)
        if env.get('RANK') == str(rank) and 'FAMT_REHEARSAL' in env:
            parent = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
            if _env_of(parent).get('RANK') is None:
                return pid
    return None


@dataclass
class RunResult:
    """One launch of tools/dist_train.sh."""
    returncode: int
    output: str
    seconds: float
    killed_pid: Optional[int] = None
    seconds_after_kill: Optional[float] = None  # from the SIGKILL to the launcher's exit


def launch(nproc: int, work_dir: str, options: List[str], resume: bool = False,
           kill_rank: Optional[int] = None, kill_pattern: Optional[str] = None,
           timeout: float = 1800, log=None) -> RunResult:
    """``bash tools/dist_train.sh CONFIG nproc`` with ``options``; with ``kill_rank``, SIGKILL
    that rank's process at the first output line matching ``kill_pattern``."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               FAMT_REHEARSAL='1')
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), CONFIG, str(nproc),
           '--work-dir', work_dir] + (['--resume'] if resume else []) + [
               '--cfg-options'] + options
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, killed, t_kill = [], None, None
    try:
        for line in proc.stdout:
            lines.append(line)
            if log is not None:
                log.write(line)
            if time.time() - t0 > timeout:
                raise TimeoutError(f'rehearsal run exceeded {timeout}s')
            if kill_rank is not None and killed is None and re.search(kill_pattern, line):
                killed = rank_pid(proc.pid, kill_rank)
                if killed is None:
                    raise RuntimeError(f'rehearsal: no process of rank {kill_rank} found')
                os.kill(killed, signal.SIGKILL)
                t_kill = time.time()
                note = f'[rehearsal] SIGKILL sent to rank {kill_rank} (pid {killed})\n'
                lines.append(note)
                if log is not None:
                    log.write(note)
        proc.wait(timeout=max(1.0, timeout - (time.time() - t0)))
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # never leave a half-dead job behind
        proc.wait()
        raise
    end = time.time()
    return RunResult(proc.returncode, ''.join(lines), end - t0, killed,
                     None if t_kill is None else end - t_kill)


@dataclass
class Rehearsal:
    """What :func:`rehearse` found; ``problems`` empty means every check passed."""
    killed: RunResult
    resumed: RunResult
    rank_sha1: List[str] = field(default_factory=list)
    file_sha1: str = ''
    problems: List[str] = field(default_factory=list)

    def summary(self, nproc: int, images: int) -> str:
        k, r = self.killed, self.resumed
        lines = [
            f'rehearsal: {nproc} processes (gloo, CPU), {images} JPEGs, file bank',
            f'  run 1: killed rank (pid {k.killed_pid}) by SIGKILL in the 2nd refresh; job '
            f'ended {k.seconds_after_kill:.1f}s after the kill (rc {k.returncode}), '
            f'{k.seconds:.0f}s in all' if k.seconds_after_kill is not None else
            '  run 1: the kill never happened',
            f'  run 2 (--resume): rc {r.returncode}, {r.seconds:.0f}s',
            f'  bank SHA-1 per rank: {[s[:12] for s in self.rank_sha1]}',
            f'  bank file SHA-1: {self.file_sha1[:12]}',
        ]
        lines += [f'  PROBLEM: {p}' for p in self.problems] or ['  all checks passed']
        return '\n'.join(lines)


def rehearse(root: str, nproc: int = 4, images: int = 3000, kill_rank: int = 1,
             dist_timeout: int = 60, img_size: int = 64, batch_size: int = 16,
             refresh_batch: int = 4, seed: int = 0, log=None) -> Rehearsal:
    """Generate the JPEG folder (``root/data``), train with ``nproc`` processes until the
    second refresh (before epoch 3, counted from 1 as in the log), SIGKILL ``kill_rank`` in
    it, resume, and check."""
    data = osp.join(root, 'data')
    make_imagenet_like_root(data, images, seed)
    work = osp.join(root, 'work')
    options = shrink_options(data, 3, img_size, batch_size, refresh_batch, dist_timeout)
    killed = launch(nproc, work, options, kill_rank=kill_rank,
                    kill_pattern=r'FAMT refresh \(epoch 3\): \d+/\d+ images', log=log)
    resumed = launch(nproc, work, options, resume=True, log=log)
    result = Rehearsal(killed, resumed)
    p = result.problems
    if killed.killed_pid is None:
        p.append('run 1 never reached the second refresh')
    if killed.returncode == 0:
        p.append('run 1 ended normally although a rank was killed')
    if 'FAMT refresh before epoch 3:' in killed.output:
        p.append('the kill came after the second refresh had finished')
    if killed.seconds_after_kill is not None and killed.seconds_after_kill >= dist_timeout:
        p.append(f'run 1 took {killed.seconds_after_kill:.0f}s after the kill (timeout '
                 f'{dist_timeout}s): a rank waited for the dead one until the timeout')
    for text in (killed.output, resumed.output):
        if re.search(r'[Tt]imed out|DistStoreError|[Ww]atchdog', text):
            p.append('a collective or the store timed out')
            break
    if resumed.returncode != 0:
        p.append(f'the resumed run failed (rc {resumed.returncode})')
    if 'FAMT: restored the weight bank of epoch 2' not in resumed.output:
        p.append('the resumed run did not restore the bank of epoch 2')
    if 'FAMT refresh before epoch 3:' not in resumed.output:
        p.append('the resumed run did not redo the refresh before epoch 3')
    found = re.findall(r'the \d+ ranks hold the same bank \(SHA-1 per rank: \[([^\]]*)\]',
                       resumed.output)
    if found:
        result.rank_sha1 = [s.strip(" '") for s in found[-1].split(',')]
    if len(result.rank_sha1) != nproc or len(set(result.rank_sha1)) != 1:
        p.append(f'the ranks do not report one bank: {result.rank_sha1}')
    ckpt = osp.join(work, 'epoch_3.pth')
    if osp.isfile(ckpt):
        from ..compat import load_local_checkpoint
        state = load_local_checkpoint(ckpt)['famt']
        path = osp.join(work, 'famt_bank', state['bank_file'])
        result.file_sha1 = file_checksum(path)[0]
        if result.file_sha1 != state['bank_sha1']:
            p.append(f'{path} is not the bank epoch_3.pth references')
        if result.rank_sha1 and not state['bank_sha1'].startswith(result.rank_sha1[0]):
            p.append('the ranks\' bank is not the one epoch_3.pth references')
    else:
        p.append('no epoch_3.pth: the resumed run did not finish')
    if [f for f in os.listdir(osp.join(work, 'famt_bank')) if f.endswith('.tmp')]:
        p.append('a temporary bank file was left in famt_bank/')
    return result


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        description='Rehearse the ImageNet cluster path: N processes, a JPEG folder, a '
        'SIGKILL in the second refresh, --resume; prints a summary, exit 1 on a failed check')
    parser.add_argument('root', help='directory for the JPEG folder and the work dir')
    parser.add_argument('--nproc', type=int, default=4)
    parser.add_argument('--images', type=int, default=3000)
    parser.add_argument('--kill-rank', type=int, default=1)
    parser.add_argument('--dist-timeout', type=int, default=60)
    parser.add_argument('--log', help='write the runs\' output here')
    args = parser.parse_args(argv)
    log = open(args.log, 'w') if args.log else None
    try:
        result = rehearse(args.root, args.nproc, args.images, args.kill_rank,
                          args.dist_timeout, log=log)
    finally:
        if log is not None:
            log.close()
    print(result.summary(args.nproc, args.images))
    return 1 if result.problems else 0


if __name__ == '__main__':
    sys.exit(main())
