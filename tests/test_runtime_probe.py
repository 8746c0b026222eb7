"""The machine-speed probe stored next to timing results."""
import torch

import common.runtime
from common.runtime import gemm_probe


def test_gemm_probe_reports_the_rate_of_its_own_shape(monkeypatch):
    """GFLOPS = 2 x rows x k x n / seconds per call, for the GEMM the probe actually runs."""
    shapes = []

    def fake_time_call(fn, min_seconds):
        shapes.append(tuple(fn().shape))
        return 0.002  # seconds per call

    monkeypatch.setattr(common.runtime, "time_call", fake_time_call)
    r = gemm_probe(seconds=0.05, rows=32, k=256, n=512)
    assert shapes == [(32, 512)]                                  # rows x k times k x n
    assert r["shape"] == [32, 256, 512]
    assert r["gflops"] == round(2 * 32 * 256 * 512 / 0.002 / 1e9, 1) == 4.2
    assert r["threads"] == torch.get_num_threads()


def test_gemm_probe_measures_for_real():
    r = gemm_probe(seconds=0.05, rows=32, k=256, n=512)
    assert r["shape"] == [32, 256, 512] and r["gflops"] > 0 and r["threads"] >= 1
