"""Glue between parsed flags and a loaded model: provenance of the model and a lazy loader."""
from __future__ import annotations

import functools


def model_info(resolved, args) -> dict:
    """What result.json records about the model: reference, kind, weights hash, adapter hash."""
    from common.results import dir_sha256
    adapter = getattr(args, "adapter", None)
    return {**resolved.provenance(), "adapter": adapter, "adapter_sha256": dir_sha256(adapter) if adapter else None,
            "dtype": args.dtype, "backend_requested": args.backend}


def lazy_llm(resolved, args, adapter: str | None = "__from_args__"):
    """A function that loads the model on first call only (resumed runs may need no model)."""
    from common.sampling import LLM
    if adapter == "__from_args__":
        adapter = getattr(args, "adapter", None)

    @functools.lru_cache(maxsize=1)
    def get():
        return LLM(resolved, backend=args.backend, dtype=args.dtype, adapter=adapter, max_batch=args.max_batch,
                   tensor_parallel_size=getattr(args, "tensor_parallel_size", 1),
                   spec_max=getattr(args, "spec_max", 8))
    return get


def time_call(fn, min_seconds: float) -> float:
    """Mean seconds per call, after one warm-up call, over at least ``min_seconds`` and 3 calls."""
    import time
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds and n >= 3:
            return dt / n


def gemm_probe(seconds: float = 1.0, rows: int = 128, k: int = 896, n: int = 4864) -> dict:
    """How fast this machine multiplies matrices right now: float32 GFLOPS of torch's default
    ``linear`` on one decode-step-sized GEMM (rows x k times k x n, the 0.5B model's MLP
    up-projection at a 128-row step), timed for about ``seconds``.

    Why: our machines are shared, and the same code has measured up to 2x slower at one time of
    day than at another; a timing result records the probe next to it so that a reader can
    tell the code's speed from the machine's."""
    import torch
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, k, generator=g), torch.randn(n, k, generator=g)
    dt = time_call(lambda: torch.nn.functional.linear(x, w), seconds)
    return {"shape": [rows, k, n], "gflops": round(2 * rows * k * n / dt / 1e9, 1), "threads": torch.get_num_threads()}
