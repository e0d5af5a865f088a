"""Frozen-feature probes of a pre-trained encoder: linear (logistic regression) and k-NN.

Used by the CPU experiment (docs/evaluation.md, "The CPU probe experiment"). The encoder is
mmpretrain's ``VisionTransformer`` with the pre-training arch, loaded with ``StrictPretrained``
(``prefix='backbone.'``), frozen, in eval mode; features are computed on whole images without
augmentation: the CLS token after the final norm and the mean patch token.
"""
import time
from typing import Dict, Sequence

import numpy as np
import torch

FEATURES = ('cls', 'avg')


class ProbeData:
    """The probe's images (rendered once) and labels, normalised as in pre-training.

    Args:
        dataset_cfg (dict): the pre-training ``SyntheticObjects`` config; its ``num_samples``
            train images (the pre-training images) fit the probe.
        preprocessor (dict): the model's ``data_preprocessor`` (mean, std, to_rgb).
        num_test (int): images of split ``'test'`` the probe is scored on.
    """

    def __init__(self, dataset_cfg: dict, preprocessor: dict, num_test: int):
        from famt_mm.datasets import SyntheticObjects
        keys = ('img_size', 'seed', 'num_classes', 'object_scale', 'texture')
        kw = {k: dataset_cfg[k] for k in keys if k in dataset_cfg}
        self.mean = torch.tensor(preprocessor['mean'], dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocessor['std'], dtype=torch.float32).view(1, 3, 1, 1)
        self.to_rgb = preprocessor.get('to_rgb', True)
        self.train_set = SyntheticObjects(num_samples=dataset_cfg['num_samples'],
                                          split='train', **kw)
        self.test_set = SyntheticObjects(num_samples=num_test, split='test', **kw)
        self.num_classes = self.train_set.num_classes
        self.x_train, self.y_train = self._render(self.train_set)
        self.x_test, self.y_test = self._render(self.test_set)

    def _render(self, ds):
        imgs = np.stack([ds.get_image(i) for i in range(len(ds))])  # N x H x W x 3, BGR
        if self.to_rgb:
            imgs = imgs[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float()
        return (x - self.mean) / self.std, torch.from_numpy(ds.get_gt_labels())


def build_probe_encoder(backbone_cfg: dict, checkpoint: str):
    """Frozen mmpretrain VisionTransformer with the pre-training arch, strictly loaded."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from ..transfer.checkpoint import load_strict_pretrained_modules
    bb = backbone_cfg
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        encoder = MODELS.build(dict(
            type='VisionTransformer', arch=bb['arch'], img_size=bb['img_size'],
            patch_size=bb['patch_size'], out_type='raw', final_norm=True,
            init_cfg=dict(type='StrictPretrained', checkpoint=checkpoint, prefix='backbone.')))
    # strict: every tensor comes from the checkpoint. No init_weights() after it:
    # VisionTransformer.init_weights re-draws pos_embed unless init_cfg is 'Pretrained'.
    load_strict_pretrained_modules(encoder)
    encoder.eval()
    return encoder.requires_grad_(False)


@torch.no_grad()
def extract_features(encoder, x: torch.Tensor, batch_size: int = 250) -> Dict[str, torch.Tensor]:
    """CLS token (after the final norm) and mean patch token of N images, each N x C."""
    cls, avg = [], []
    for i in range(0, len(x), batch_size):
        tokens = encoder(x[i:i + batch_size])[-1]  # B x (1 + L) x C
        cls.append(tokens[:, 0])
        avg.append(tokens[:, 1:].mean(1))
    return {'cls': torch.cat(cls), 'avg': torch.cat(avg)}


def fit_logistic(x, y, num_classes, l2, max_iter=300):
    """Multinomial logistic regression (weights C x K, bias K) by full-batch L-BFGS."""
    x = x.double()
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach(), b.detach()


def _accuracy(x, y, w, b) -> float:
    return float(((x.double() @ w + b).argmax(1) == y).double().mean() * 100)


def linear_probe(f_train, y_train, f_test, y_test, num_classes: int,
                 l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2)) -> dict:
    """Test top-1 (%) of logistic regression on standardised features.

    Features are standardised with the training set's mean / std (BatchNorm without affine,
    as MAE's probe); the L2 penalty is picked on the last 20% of the training set, then the
    model is refitted on all of it. Deterministic given the features.
    """
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    n_fit = int(round(0.8 * len(f_train)))
    scores = []
    for l2 in l2_grid:
        w, b = fit_logistic(f_train[:n_fit], y_train[:n_fit], num_classes, l2)
        scores.append(_accuracy(f_train[n_fit:], y_train[n_fit:], w, b))
    l2 = l2_grid[int(np.argmax(scores))]  # first best: the smallest penalty on ties
    w, b = fit_logistic(f_train, y_train, num_classes, l2)
    return dict(top1=_accuracy(f_test, y_test, w, b),
                train_top1=_accuracy(f_train, y_train, w, b), l2=l2)


def knn_probe(f_train, y_train, f_test, y_test, num_classes: int, k: int = 20,
              temperature: float = 0.07) -> dict:
    """Weighted k-NN top-1 (%) on L2-normalised features (the DINO / InstDisc protocol).

    Each test feature votes with its ``k`` most cosine-similar training features, each vote
    weighted by exp(similarity / temperature).
    """
    f_train = torch.nn.functional.normalize(f_train.float(), dim=1)
    f_test = torch.nn.functional.normalize(f_test.float(), dim=1)
    sim, idx = (f_test @ f_train.T).topk(min(k, len(f_train)), dim=1)
    votes = torch.zeros(len(f_test), num_classes).scatter_add_(
        1, y_train[idx], (sim / temperature).exp())
    pred = votes.argmax(1)
    return dict(top1=float((pred == y_test).double().mean() * 100), k=k)


def probe_checkpoint(backbone_cfg: dict, checkpoint: str, data: ProbeData,
                     l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2), k: int = 20) -> dict:
    """Linear and k-NN top-1 of both features of ``checkpoint``'s frozen encoder."""
    t0 = time.perf_counter()
    encoder = build_probe_encoder(backbone_cfg, checkpoint)
    f_train = extract_features(encoder, data.x_train)
    f_test = extract_features(encoder, data.x_test)
    out = {}
    for feat in FEATURES:
        out[feat] = linear_probe(f_train[feat], data.y_train, f_test[feat], data.y_test,
                                 data.num_classes, l2_grid)
        out[f'{feat}_knn'] = knn_probe(f_train[feat], data.y_train, f_test[feat],
                                       data.y_test, data.num_classes, k=k)
    out['seconds'] = time.perf_counter() - t0
    return out
