"""The oracle weight term of the CPU probe experiment (famt_mm/analysis/oracle.py): weights from
SyntheticObjects' own object masks, through the real refresh pass on a real batch."""
import pytest
import torch

from famt_mm.analysis.experiment import FAMT_CONFIG


def _oracle_model_and_loader(invert: bool, num_samples: int = 12):
    import famt_mm.analysis  # noqa: F401  (registers the oracle term)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from famt_mm.engine.refresh import build_refresh_loader
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(FAMT_CONFIG)  # the experiment's 32 px probe setting, 8 x 8 patches
    cfg.train_dataloader.dataset.num_samples = num_samples
    dataset = cfg.train_dataloader.dataset.to_dict()
    cfg.model.mask_generator.update(terms=('object_coverage', ), term_args=dict(
        object_coverage=dict(dataset=dataset, invert=invert)))
    model_cfg = cfg.model.to_dict()
    model_cfg['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    model = MODELS.build(model_cfg).eval()
    loader = build_refresh_loader(cfg.train_dataloader, tuple(model.input_hw), 'fail',
                                  batch_size=5, num_workers=0)  # 5: the last batch is short
    return model, loader, dataset


def _covers(dataset, grid_hw):
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(dict(dataset, pipeline=[]))
    return torch.stack([torch.from_numpy(ds.patch_object_fraction(i, grid_hw)).float()
                        for i in range(len(ds))])


@pytest.mark.parametrize('invert', [False, True])
def test_the_refresh_gives_the_oracle_each_images_own_object_coverage(invert):
    from famt_mm.engine.refresh import compute_shard_maps
    from famt_mm.models.famt_weights import dequantize_weights
    model, loader, dataset = _oracle_model_and_loader(invert)
    shard = compute_shard_maps(model, loader, 'float16')
    assert shard.idx.tolist() == list(range(12)) and not shard.fallback
    covers = _covers(dataset, tuple(model.grid_hw))  # N x 8 x 8, relative coordinates
    expected = 0.1 + 0.9 * ((1 - covers) if invert else covers)
    maps = dequantize_weights(shard.maps).float()
    # the bank keeps each map up to scale: compare shapes normalised by their maxima
    normalised = maps / maps.flatten(1).amax(1)[:, None, None]
    want = expected / expected.flatten(1).amax(1)[:, None, None]
    assert torch.allclose(normalised, want, atol=2e-3)
    for c, w in zip(covers, maps):  # every image: object patches against background ones
        on, off = w[c > 0.9], w[c == 0]
        assert on.numel() and off.numel()
        if invert:
            assert on.max() < off.min()
        else:
            assert on.min() > off.max()
    # a wrong index would give another image's map: the masks differ between images
    assert not torch.allclose(normalised[0], normalised[1], atol=2e-3)


def test_the_oracle_outside_the_refresh_says_what_it_needs():
    model, loader, _ = _oracle_model_and_loader(invert=False, num_samples=4)
    data = model.data_preprocessor(next(iter(loader)), False)
    with pytest.raises(ValueError, match='sample_idx.*only the refresh pass'):
        model.compute_famt_weights(data['inputs'])
    weighting = model.mask_generator.weighting
    with weighting.given_sample_idx([3, 2, 1, 0]):  # the batch's indices, any order
        weights, _ = model.compute_famt_weights(data['inputs'])
    with weighting.given_sample_idx([0, 1, 2, 3]):
        ordered, _ = model.compute_famt_weights(data['inputs'])
    assert torch.equal(weights, ordered.flip(0))
    with pytest.raises(ValueError, match='sample_idx of shape \\(2,\\) for a batch of 4'):
        with weighting.given_sample_idx([0, 1]):
            model.compute_famt_weights(data['inputs'])


def test_terms_that_do_not_need_the_indices_never_get_them():
    from famt_mm.models.weighting import FAMTWeighting
    weighting = FAMTWeighting(('attention', 'frequency'))
    assert not weighting.needs('sample_idx')
    with weighting.given_sample_idx([0, 1]):
        assert weighting._sample_idx is None
    with pytest.raises(ValueError, match="dataset=<the training set's config>"):
        oracle = FAMTWeighting(('object_coverage', ))
        from famt_mm.models.weight_terms import TermContext
        ctx = TermContext(attn_cls=torch.ones(1, 1, 4), tokens=torch.ones(1, 4, 2),
                          grid_hw=(2, 2), patch_size=(4, 4))
        with oracle.given_sample_idx([0]):
            oracle.compute_terms(ctx)
