"""What ``tools/gpu_check.sh`` checks in its runs, and its one table.

* :class:`GPUCheckReportHook`: put into the check's training runs; at the end it logs one
  ``gpu_check report:`` line with what really ran: the optim wrapper's type, the AMP dtype
  it was given, the dtypes a Linear layer of the backbone produced in training forwards
  (autocast really on, or not), the loss scale, iterations, FAMT-phase iterations (the
  per-step bank row path), non-finite losses, world size and device.
* :func:`check_training_log`: the failures in a training log, each as a reason naming it:
  a traceback or a non-zero exit, NaN / inf losses, ``fallback to uniform: N`` with N > 0,
  fewer refreshes than asked, a bank not in a file where a file was asked, AMP not kept
  (wrapper replaced, or autocast not producing the asked dtype, or fp16 without a loss
  scale), no FAMT-phase step, a missing report line.
* ``python -m famt_mm.analysis.gpu_check OUT_DIR PLAN.json``: the table from the runs'
  logs and JSON files; exit status 1 and one ``FAIL: ...`` line per reason on any failure.
"""
import json
import math
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

REPORT = 'gpu_check report:'
_REFRESH = re.compile(r'FAMT refresh before epoch (\d+): (\d+) images in [\d.]+s '
                      r'\(([\d.]+) img/s\), fallback to uniform: (\d+), unreadable: (\d+).*?'
                      r'bank ([\d.]+) MiB( in \S+)?')
_NONFINITE_LOSS = re.compile(r'\bloss(?:_\w+)?: (?:nan|inf|-inf)\b', re.IGNORECASE)


def _unwrap(model):
    return getattr(model, 'module', model)


@HOOKS.register_module()
class GPUCheckReportHook(Hook):
    """Logs, after training, one ``gpu_check report: key=value ...`` line (module doc)."""

    priority = 'LOWEST'

    def __init__(self):
        self.iterations = self.famt_iterations = self.nonfinite = 0
        self.forward_dtypes = set()
        self._handle = None

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        first = next(m for m in getattr(model, 'backbone', model).modules()
                     if isinstance(m, torch.nn.Linear))

        def record(module, args, output):
            if module.training and torch.is_tensor(output):
                self.forward_dtypes.add(str(output.dtype).replace('torch.', ''))
        self._handle = first.register_forward_hook(record)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.iterations += 1
        loss = runner.message_hub.get_scalar('train/loss').current()
        self.nonfinite += not math.isfinite(loss)
        generator = getattr(_unwrap(runner.model), 'mask_generator', None)
        self.famt_iterations += bool(getattr(generator, 'famt_active', False))

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
        wrapper = runner.optim_wrapper
        scaler = getattr(wrapper, 'loss_scaler', None)
        scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() \
            else None
        amp_dtype = getattr(wrapper, 'cast_dtype', None)
        device = next(_unwrap(runner.model).parameters()).device
        name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
        runner.logger.info(
            f'{REPORT} optim_wrapper={type(wrapper).__name__} '
            f"amp_dtype={str(amp_dtype).replace('torch.', '') if amp_dtype else 'none'} "
            f"forward_dtypes={','.join(sorted(self.forward_dtypes)) or 'none'} "
            f"loss_scale={scale if scale is not None else 'none'} "
            f'iterations={self.iterations} famt_iterations={self.famt_iterations} '
            f'nonfinite_losses={self.nonfinite} world_size={runner.world_size} '
            f'device={device} ({name})')


def parse_report(log: str) -> Optional[Dict[str, str]]:
    """The last ``gpu_check report:`` line of a log as a dict, or None."""
    lines = [line for line in log.splitlines() if REPORT in line]
    if not lines:
        return None
    text = lines[-1].split(REPORT, 1)[1]
    return dict(re.findall(r'(\w+)=(\S+)', text))


def parse_refreshes(log: str) -> List[Dict]:
    """The refresh summary lines: epoch, images, img/s, fallbacks, unreadable, MiB, file."""
    return [dict(epoch=int(e), images=int(n), rate=float(r), fallback=int(f), bad=int(b),
                 mib=float(m), file=bool(file)) for e, n, r, f, b, m, file in
            _REFRESH.findall(log)]


def check_training_log(log: str, rc: int = 0, amp: Optional[str] = None, refreshes: int = 2,
                       file_bank: bool = True, world_size: int = 1) -> Tuple[str, List[str]]:
    """(summary, failure reasons) of one training run's log.

    Args:
        log: the run's whole stdout + stderr.
        rc: its exit status.
        amp: 'float16' / 'bfloat16' if the run must train under that AMP dtype, else None.
        refreshes: refreshes the run must log; file_bank: whether the bank must be a file.
        world_size: processes the run must have.
    """
    reasons = []
    if rc != 0:
        last = [line for line in log.splitlines() if line.strip()][-1:] or ['(no output)']
        reasons.append(f'exited with status {rc}: {last[0].strip()[:200]}')
    if 'Traceback (most recent call last)' in log and rc == 0:
        reasons.append('a traceback in the log')
    if _NONFINITE_LOSS.search(log) or 'non-finite loss' in log:
        reasons.append('non-finite loss in the log')
    found = parse_refreshes(log)
    fallbacks = sum(r['fallback'] for r in found)
    if fallbacks:
        reasons.append(f'fallback to uniform: {fallbacks} weight maps (NaN / inf / zero)')
    if any(r['bad'] for r in found):
        reasons.append(f"unreadable images in the refresh: {sum(r['bad'] for r in found)}")
    if len(found) < refreshes:
        reasons.append(f'{len(found)} refresh(es) logged, {refreshes} expected')
    if file_bank and found and not all(r['file'] for r in found):
        reasons.append('the weight bank was not stored in a file')
    if 'AmpOptimWrapper -> OptimWrapper' in log:
        reasons.append('AMP was dropped (AmpOptimWrapper -> OptimWrapper)')
    report = parse_report(log)
    if report is None:
        if rc == 0:
            reasons.append('no gpu_check report line (did the run finish training?)')
        return 'no report', reasons
    if int(report.get('nonfinite_losses', 0)):
        reasons.append(f"non-finite loss in {report['nonfinite_losses']} iteration(s)")
    if int(report.get('famt_iterations', 0)) == 0:
        reasons.append('no FAMT-phase iteration (the bank rows were never read)')
    if int(report.get('world_size', 1)) != world_size:
        reasons.append(f"world size {report.get('world_size')}, {world_size} expected")
    if amp is not None:
        if report.get('optim_wrapper') != 'AmpOptimWrapper':
            reasons.append(f"AMP not kept: optim wrapper {report.get('optim_wrapper')}")
        if report.get('amp_dtype') != amp or amp not in report.get('forward_dtypes', ''):
            reasons.append(f"AMP not in {amp}: wrapper dtype {report.get('amp_dtype')}, "
                           f"forward outputs {report.get('forward_dtypes')}")
        if amp == 'float16' and report.get('loss_scale') in (None, 'none'):
            reasons.append('fp16 AMP without a loss scale')
    summary = (f"{report.get('optim_wrapper')} {report.get('amp_dtype')} (forward "
               f"{report.get('forward_dtypes')}, loss scale {report.get('loss_scale')}), "
               f"{report.get('iterations')} iterations ({report.get('famt_iterations')} FAMT), "
               f"{report.get('world_size')} process(es); refreshes: " + ', '.join(
                   f"before epoch {r['epoch']} {r['images']} images {r['rate']:.0f} img/s, "
                   f"fallback {r['fallback']}, bank {r['mib']} MiB"
                   + (' (file)' if r['file'] else '') for r in found))
    return summary, reasons


def check_benchmark(result: Optional[dict], rc: int, log: str) -> Tuple[str, List[str]]:
    """(table cell, failure reasons) of one ``benchmark_pretrain.py`` run."""
    if rc != 0 or result is None:
        last = [line for line in log.splitlines() if line.strip()][-1:] or ['(no output)']
        return 'FAIL', [f'exited with status {rc}: {last[0].strip()[:200]}']
    famt, base = result['famt']['step']['median_s'], result['mae']['step']['median_s']
    reasons = [f'non-finite {k} time' for k, v in (('FAMT step', famt), ('MAE step', base))
               if not (math.isfinite(v) and v > 0)]
    for key in ('famt', 'mae'):
        loss = result[key].get('last_loss')
        if loss is None or not math.isfinite(loss):
            reasons.append(f'{key} loss {loss} in the benchmark (not finite)')
    batch = result['setup']['batch']
    cell = (f"FAMT {famt * 1e3:.0f} ms ({batch / famt:.0f} img/s), MAE {base * 1e3:.0f} ms "
            f"({batch / base:.0f} img/s): {result['ratios']['speedup']:.2f}x (FLOP ratio "
            f"{result['ratios']['flop_ratio']:.2f}x); refresh "
            f"{result['refresh']['images_per_s']:.0f} img/s")
    return cell, reasons


def _read(path: str) -> str:
    return open(path, errors='replace').read() if osp.isfile(path) else ''


def _rc(out: str, name: str) -> int:
    text = _read(osp.join(out, f'{name}.rc')).strip()
    return int(text) if text else 127  # no status file: the step never ran


def report(out: str, plan: dict) -> Tuple[List[Tuple[str, str]], List[str]]:
    """(table rows, failures) of the runs ``plan`` lists, from their files in ``out``."""
    rows, failures = [], []
    for name, arch in plan.get('benchmarks', {}).items():
        path = osp.join(out, f'bench_{name}.json')
        result = json.load(open(path)) if osp.isfile(path) else None
        cell, reasons = check_benchmark(result, _rc(out, f'bench_{name}'),
                                        _read(osp.join(out, f'bench_{name}.log')))
        label = (f"{result['setup']['arch_name']}, batch {result['setup']['batch']}, "
                 f"{result['setup']['precision']}" if result else f'benchmark {arch}')
        rows.append((label, ('FAIL: ' + '; '.join(reasons) + ' | ' if reasons else '') + cell))
        failures += [f'{label}: {r}' for r in reasons]
    for name, expect in plan.get('trainings', {}).items():
        summary, reasons = check_training_log(_read(osp.join(out, f'{name}.log')),
                                              _rc(out, name), **expect)
        rows.append((f'training {name}', ('FAIL: ' + '; '.join(reasons) if reasons
                                          else 'ok') + f': {summary}'))
        failures += [f'training {name}: {r}' for r in reasons]
    for note in plan.get('notes', []):
        rows.append(tuple(note))
    data = osp.join(out, 'data.json')
    if 'data' in plan:
        rows_data, reasons = data_rows(json.load(open(data)) if osp.isfile(data) else None,
                                       _rc(out, 'data'), rows)
        rows += rows_data
        failures += [f'data pipelines: {r}' for r in reasons]
    return rows, failures


def data_rows(result: Optional[dict], rc: int, rows) -> Tuple[List[Tuple[str, str]], List[str]]:
    """Table rows of ``benchmark_data.py``: img/s per core, with workers, the GPU side."""
    if rc != 0 or result is None:
        return [('data pipelines', 'FAIL')], [f'benchmark_data.py exited with status {rc}']
    from .data_budget import median
    single = result['single_core']['cpu']
    cells = [f'{name} {median(v):.0f}' for name, v in single.items()]
    out = [('data pipelines, img/s per core', '; '.join(cells))]
    for name, by_n in result.get('workers', {}).items():
        out.append((f'{name}, workers', ', '.join(f'{n}: {r:.0f} img/s' for n, r in
                                                 by_n.items())))
    if 'gpu_decode' in result:
        out.append(('GPU decode + crop + resize + flip (nvJPEG, decode_crop_batch)',
                    f"{median(result['gpu_decode']):.0f} img/s"))
    return out, []


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out, plan = argv[0], json.load(open(argv[1]))
    rows, failures = report(out, plan)
    rows = [tuple(r) for r in plan.get('head', [])] + rows
    print('\n| check | result |\n| --- | --- |')
    for key, value in rows:
        print(f'| {key} | {value} |')
    for reason in failures:
        print(f'FAIL: {reason}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
