"""famt_mm.bank.encoding: a map stored as float16 or uint8 over its row maximum, and back."""
import numpy as np
import pytest
import torch

from famt_mm.bank import BANK_DTYPES, dequantize_weights, dtype_name, quantize_weights
from famt_mm.models.famt_weights import sanitize_weights


def test_quantize_uint8_round_trip():
    torch.manual_seed(0)
    w, _ = sanitize_weights(torch.rand(4, 196) * 7 + 1e-3)
    q = quantize_weights(w, 'uint8')
    assert q.dtype == torch.uint8 and q.shape == (4, 196)
    assert q.element_size() * q.nelement() == 4 * 196  # 1 byte per patch
    d = dequantize_weights(q)
    assert d.dtype == torch.float32
    assert torch.allclose(d.amax(dim=1), torch.ones(4))
    scaled = w / w.amax(dim=1, keepdim=True)
    err = (d - scaled.clamp_min(1 / 255)).abs().max()
    assert err <= 0.5 / 255 + 1e-6
    assert q.min() >= 1  # tiny weights stay drawable


def test_quantize_float16_round_trip_and_maps():
    torch.manual_seed(0)
    w, _ = sanitize_weights(torch.rand(2, 14, 14) * 5)
    q = quantize_weights(w, torch.float16)
    assert q.dtype == torch.float16 and q.shape == (2, 14, 14)
    assert q.element_size() * q.nelement() == 2 * 196 * 2
    d = dequantize_weights(q)
    scaled = w / w.amax(dim=(1, 2), keepdim=True)
    assert d.dtype == torch.float32
    assert ((d - scaled).abs() / scaled).max() <= 2.0**-11 + 1e-7


def test_quantize_rejects_bad_input():
    with pytest.raises(ValueError, match='bfloat16'):
        quantize_weights(torch.ones(1, 4), 'bfloat16')
    with pytest.raises(ValueError, match='sanitize'):
        quantize_weights(torch.zeros(1, 4), 'uint8')
    with pytest.raises(ValueError, match='float16 or uint8'):
        dequantize_weights(torch.ones(1, 4))


def test_one_dtype_table_for_names_torch_and_numpy():
    for name, dtype in BANK_DTYPES.items():
        assert dtype_name(name) == dtype_name(dtype) == dtype_name(np.dtype(name)) == name
    for bad in ('bfloat16', torch.float32, np.dtype(np.int8)):
        with pytest.raises(ValueError, match=r"valid: \('float16', 'uint8'\)"):
            dtype_name(bad)
