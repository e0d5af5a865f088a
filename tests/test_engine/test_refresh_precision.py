"""The refresh runs in the training's AMP dtype with the CLS attention row and the weight terms
in float32: fp16 and bf16 refresh maps stay within a stated tolerance of the fp32 maps."""
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict

from famt_mm.engine.refresh import build_refresh_loader, compute_shard_maps, training_amp_dtype
from famt_mm.models.famt_weights import dequantize_weights
from tests.conftest import FAMT_DEMO, tiny_cfg
from tests.test_visualization import build_tiny

#: max |AMP map - fp32 map| per cell, maps scaled to max 1 (CPU autocast, the tiny demo
#: encoder); measured 0.01-0.02 for bf16 and ~0.002 for fp16.
TOLERANCE = {torch.bfloat16: 0.06, torch.float16: 0.01}


def test_amp_refresh_maps_equal_fp32_maps_within_tolerance(tmp_path):
    model = build_tiny(FAMT_DEMO, tmp_path)
    cfg = tiny_cfg(tmp_path / 'w')
    loader = build_refresh_loader(cfg.train_dataloader, tuple(model.input_hw), 'fail',
                                  batch_size=8, num_workers=0)
    ref = compute_shard_maps(model, loader, 'float16')
    assert not ref.fallback
    for dtype, tol in TOLERANCE.items():
        shard = compute_shard_maps(model, loader, 'float16', dtype)
        assert torch.equal(shard.idx, ref.idx) and not shard.fallback
        diff = (dequantize_weights(shard.maps) - dequantize_weights(ref.maps)).abs()
        assert 0 < diff.max() < tol, (dtype, float(diff.max()))  # > 0: autocast did run


def test_terms_are_float32_under_autocast(tmp_path):
    model = build_tiny(FAMT_DEMO, tmp_path)
    x = torch.randn(2, 3, *model.input_hw, generator=torch.Generator().manual_seed(0))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        attn_cls = model.famt_context(x).attn_cls
        weights, _ = model.compute_famt_weights(x)
    assert attn_cls.dtype == weights.dtype == torch.float32
    exact = model.famt_context(x).attn_cls
    assert 0 < (attn_cls - exact).abs().max() < 0.01  # bf16 encoder, float32 softmax row


def test_no_amp_wrapper_means_no_autocast():
    model = torch.nn.Linear(2, 2)
    plain = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert training_amp_dtype(plain) is None
    assert training_amp_dtype(OptimWrapperDict(a=plain)) is None
