"""The machine-speed probe stored next to timing results."""
from common.runtime import gemm_probe


def test_gemm_probe_reports_a_positive_rate_for_its_shape():
    r = gemm_probe(seconds=0.05, rows=32, k=256, n=512)
    assert r["shape"] == [32, 256, 512] and r["gflops"] > 0 and r["threads"] >= 1
