"""The demo's cosine schedule follows train_cfg.max_epochs (it was fixed at 6 epochs: a
3-epoch run ended at lr 1.04e-4)."""
from mmengine.config import Config
from mmengine.runner import Runner

from tests.conftest import FAMT_DEMO, tiny_cfg


def test_the_demo_cosine_ends_at_max_epochs_whatever_it_is(tmp_path):
    cfg = tiny_cfg(tmp_path / 'work', max_epochs=3)
    cfg.param_scheduler = Config.fromfile(FAMT_DEMO).param_scheduler  # the demo's own
    runner = Runner.from_cfg(cfg)
    runner.train()
    base_lr = cfg.optim_wrapper.optimizer.lr
    lrs = runner.optim_wrapper.get_lr()['lr']  # the last step's: 1 step before the end
    # cosine over 10 steps, last at 9/10: 0.024 of the base (the 6-epoch curve gave 0.71)
    assert runner.epoch == 3 and all(lr < 0.03 * base_lr for lr in lrs), lrs
