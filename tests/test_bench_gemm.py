"""evals/bench_gemm.py: layer shapes from a config and one small measurement."""
from types import SimpleNamespace

import pytest
from conftest import load_script

from common.engine import onednn_available


def _bench():
    return load_script("evals/bench_gemm.py")


@pytest.mark.parametrize("cfg,expect", [
    # Qwen2.5-0.5B: 14 heads of 64, 2 KV heads
    (dict(hidden_size=896, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864, vocab_size=151936),
     {"q_proj/o_proj": (896, 896), "k_proj/v_proj": (896, 128), "gate_proj/up_proj": (896, 4864),
      "down_proj": (4864, 896), "lm_head": (896, 151936)}),
    # explicit head_dim that differs from hidden / heads
    (dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, head_dim=32, intermediate_size=128,
          vocab_size=100),
     {"q_proj/o_proj": (64, 128), "k_proj/v_proj": (64, 128), "gate_proj/up_proj": (64, 128),
      "down_proj": (128, 64), "lm_head": (64, 100)}),
])
def test_layer_shapes(cfg, expect):
    assert _bench().layer_shapes(SimpleNamespace(**cfg)) == expect


@pytest.mark.skipif(not onednn_available(), reason="no oneDNN")
def test_measure_reports_both_backends_and_their_difference():
    m = _bench().measure(32, 48, 4, min_seconds=0.01)
    assert m["torch_gflops"] > 0 and m["onednn_gflops"] > 0
    assert m["speedup"] > 0  # time ratio; the GFLOPS above are rounded, so tiny shapes can't recompute it
    assert (m["rows"], m["in"], m["out"]) == (4, 32, 48)
    assert 0 <= m["max_abs_diff"] < 1e-4
