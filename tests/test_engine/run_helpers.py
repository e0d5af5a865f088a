"""Small helpers of the tests that run the real Runner on the shrunk demo config."""
import os.path as osp
import uuid

from famt_mm.engine import FAMTWeightHook

# The refresh pipeline FAMTWeightHook builds by default for SyntheticObjects.
RESIZE = dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic')


def famt_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))


def own_logger(cfg):
    """A unique experiment name: Runners built within the same second would otherwise share
    one MMLogger (named by the timestamp) and write into the first one's log file."""
    cfg.experiment_name = f'famt_reliability_{uuid.uuid4().hex[:8]}'
    return cfg


def run_log(runner):
    return open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
