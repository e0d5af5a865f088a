"""``FAMTVisualizationHook``: a picture of what FAMT chose, after every weight refresh."""
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...visualization import (compose_famt_grid, famt_panels, input_hw, load_whole_images,
                              preprocessor_mean_std, recon_rgb, to_rgb_image,
                              whole_image_pipeline)
from .famt_weight_hook import FAMTWeightHook


@HOOKS.register_module()
class FAMTVisualizationHook(Hook):
    """Draw the FAMT picture grid of a few fixed training images after each refresh.

    Runs in ``before_train_epoch`` after ``FAMTWeightHook`` (priority 'LOW' <
    'NORMAL'): when the weight hook's bank was computed for this epoch
    (``bank_epoch == runner.epoch``), it draws, for the images ``indices``, the
    image, each weight term the mask generator selects, the combined weights, the masked /
    thrown / visible split (a fixed-seed draw) and the reconstruction, with the
    current model, and sends the grid to ``runner.visualizer.add_image(name,
    grid, step=epoch)``: ``LocalVisBackend`` writes
    ``<work_dir>/<timestamp>/vis_data/vis_image/<name>_<epoch>.png``, a
    ``TensorboardVisBackend`` shows it under ``name``. Only rank 0 draws (the
    other ranks do nothing, no collective calls).

    Args:
        indices (Sequence[int]): training-set indices to draw (whole images,
            loaded like the refresh pass does). (0, 1, 2, 3).
        seed (int): seed of the masking draw, fixed so that pictures of
            successive refreshes differ only by the model.
        name (str): image name for the visualizer. 'famt_masks'.
    """

    priority = 'LOW'

    def __init__(self, indices: Sequence[int] = (0, 1, 2, 3), seed: int = 0,
                 name: str = 'famt_masks'):
        indices = list(indices)
        if not indices or not all(isinstance(i, int) and i >= 0 for i in indices):
            raise ValueError(f'FAMTVisualizationHook: indices={indices} must be a non-empty '
                             'list of dataset indices (ints >= 0)')
        self.indices = indices
        self.seed = seed
        self.name = name
        self.drawn_epochs = []  # epochs drawn by this process, for tests and logs
        self._weight_hook: Optional[FAMTWeightHook] = None

    def before_train(self, runner) -> None:
        hooks = [h for h in runner.hooks if isinstance(h, FAMTWeightHook)]
        if not hooks:
            raise ValueError('FAMTVisualizationHook draws after FAMTWeightHook refreshes: add '
                             "dict(type='FAMTWeightHook', ...) to custom_hooks")
        self._weight_hook = hooks[0]
        size = len(runner.train_dataloader.dataset)
        bad = [i for i in self.indices if i >= size]
        if bad:
            raise ValueError(f'FAMTVisualizationHook: indices {bad} are outside the training '
                             f'set of {size} images')

    def before_train_epoch(self, runner) -> None:
        hook = self._weight_hook
        epoch = runner.epoch
        if hook is None or hook.bank_epoch != epoch or epoch in self.drawn_epochs:
            return
        if runner.rank == 0:
            grid = self.draw(runner)
            runner.visualizer.add_image(self.name, grid, step=epoch + 1)  # 1-based, as mmengine
            runner.logger.info(f'FAMT: drew {self.name} of epoch {epoch + 1} for images '
                               f'{self.indices} ({grid.shape[1]} x {grid.shape[0]} px)')
        self.drawn_epochs.append(epoch)

    @torch.no_grad()
    def draw(self, runner):
        """The grid (uint8 RGB, H x W x 3) for the current model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        train_pipeline = runner.cfg.train_dataloader.dataset.get('pipeline', [])
        pipeline = self._weight_hook.refresh_pipeline or whole_image_pipeline(
            train_pipeline, input_hw(model))
        inputs, names = load_whole_images(model, pipeline, dataset=runner.train_dataloader.dataset,
                                          indices=self.indices)
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        panels = famt_panels(model, inputs, generator=generator)
        mean, std = preprocessor_mean_std(model)
        return compose_famt_grid(to_rgb_image(inputs, mean, std), panels,
                                 recon_images=recon_rgb(panels, mean, std),
                                 names=names)
