"""evals/bench_gemm.py: layer shapes from a config and one small measurement."""
from types import SimpleNamespace

import pytest
from conftest import load_script

from common.engine_step import onednn_available


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
def test_measure_reports_both_backends_and_their_difference(monkeypatch):
    """GFLOPS = 2 x rows x in x out / seconds per call of each backend's GEMM; speedup = the
    ratio of their times; both GEMMs compute rows x out."""
    import common.runtime
    shapes, seconds = [], iter([2e-6, 1e-6])  # torch first, then oneDNN

    def fake_time_call(fn, min_seconds):
        shapes.append(tuple(fn().shape))
        return next(seconds)

    monkeypatch.setattr(common.runtime, "time_call", fake_time_call)
    m = _bench().measure(32, 48, 4, min_seconds=0.01)
    assert shapes == [(4, 48), (4, 48)]
    assert (m["rows"], m["in"], m["out"]) == (4, 32, 48)
    assert m["torch_gflops"] == round(2 * 4 * 32 * 48 / 2e-6 / 1e9, 1) == 6.1
    assert m["onednn_gflops"] == round(2 * 4 * 32 * 48 / 1e-6 / 1e9, 1) == 12.3
    assert m["speedup"] == 2.0
    assert 0 <= m["max_abs_diff"] < 1e-4  # the real outputs of the two GEMMs


def test_per_decode_step_weights_each_layer_by_how_often_it_runs():
    """One decoder layer of hidden 2, intermediate 4, vocab 8, at 1 and 10 rows; torch at 1000
    FLOP/s, oneDNN at 2000: each layer's time is its FLOPs (2 x rows x in x out x runs per step)
    over its rate."""
    shapes = {"q_proj/o_proj": (2, 2), "k_proj/v_proj": (2, 2), "gate_proj/up_proj": (2, 4), "down_proj": (4, 2),
              "lm_head": (2, 8)}
    ms = [{"layer": name, "rows": r, "in": k, "out": n, "torch_gflops": 1e-6, "onednn_gflops": 2e-6}
          for name, (k, n) in shapes.items() for r in (1, 10)]
    # FLOPs per row: q/o 2*2*2 x 2 + k/v 2*2*2 x 2 + gate/up 2*2*4 x 2 + down 2*4*2 x 1 + lm_head 2*2*8 x 1 = 112
    out = _bench().per_decode_step(ms, [1, 10], n_layers=1)
    assert out == {"1": {"linear_ms_per_step_torch": 112.0, "linear_ms_per_step_onednn": 56.0, "speedup": 2.0},
                   "10": {"linear_ms_per_step_torch": 1120.0, "linear_ms_per_step_onednn": 560.0, "speedup": 2.0}}


def test_per_decode_step_reproduces_the_committed_summary():
    import json
    from pathlib import Path
    res = json.loads((Path(__file__).resolve().parents[1] / "results/bench_gemm/result.json").read_text())
    rows = [int(r) for r in res["per_decode_step"]]
    assert _bench().per_decode_step(res["measurements"], rows, res["model_config"]["layers"]) == res["per_decode_step"]
