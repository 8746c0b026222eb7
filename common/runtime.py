"""Glue between parsed flags and a loaded model: the model settings as one dataclass, their
provenance, a lazy loader, and the machine-speed probe stored with timings."""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how (the ``model`` flag group of :func:`common.cli.add_model_args`)."""
    model: str
    adapter: str | None = None
    backend: str = "auto"
    dtype: str = "float32"
    max_batch: int = 128
    spec_max: int = 8
    tensor_parallel_size: int = 1
    server_url: str | None = None
    server_slots: int = 16
    server_ctx: int = 2048
    server_args: str = ""
    server_timeout: float = 3600.0

    def __post_init__(self):
        from common.results import InputError
        if self.backend == "server" and not self.server_url:
            raise InputError("--backend server needs --server-url (the address of a running completions server)")
        if self.server_url and self.backend != "server":
            raise InputError(f"--server-url goes with --backend server, not --backend {self.backend}")
        if self.server_slots < 1 or self.server_ctx < 64 or not self.server_timeout > 0:
            raise InputError("--server-slots must be >= 1, --server-ctx >= 64 and --server-timeout > 0")

    @classmethod
    def from_args(cls, args, **overrides) -> "ModelConfig":
        """Built once from parsed flags; flags a script does not define keep their defaults."""
        kw = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        kw = {**kw, **overrides}
        if kw.get("server_url") and kw.get("backend", "auto") == "auto":
            kw["backend"] = "server"
        return cls(**kw)

    def with_adapter(self, adapter) -> "ModelConfig":
        return replace(self, adapter=str(adapter) if adapter else None)


def default_run_name(kind: str, bench: str, cfg: ModelConfig, protocol: str, params, limit: int | None) -> str:
    """<kind>_<bench>_<model>[_adapter-<adapter>]_<protocol>_<greedy | n<n>-t<T>-p<top-p>-s<seed>>
    [_<backend>][_limit<N>]: the backend that generates is named unless it is the float32 engine
    (``hf``, the reference of every committed comparison), so runs of two backends never share a
    directory. Names through :func:`common.results.slug`."""
    from common.results import slug
    from common.sampling import pick_backend
    backend = pick_backend(cfg.backend, cfg.dtype)
    parts = [kind, bench, slug(cfg.model)] + (["adapter-" + slug(cfg.adapter)] if cfg.adapter else [])
    parts += [slug(protocol), "greedy" if params.temperature == 0 else
              f"n{params.n}-t{params.temperature}-p{params.top_p}-s{params.seed}"]
    return "_".join(parts + ([backend] if backend != "hf" else []) + ([f"limit{limit}"] if limit else []))


def model_info(resolved, cfg: ModelConfig) -> dict:
    """What result.json records about the model: reference, kind, weights hash, adapter hash, dtype,
    the ``--backend`` asked for and the backend that generates (``auto`` resolved here)."""
    from common.results import dir_sha256
    from common.sampling import pick_backend
    return {**resolved.provenance(), "adapter": cfg.adapter,
            "adapter_sha256": dir_sha256(cfg.adapter) if cfg.adapter else None,
            "dtype": cfg.dtype, "backend_requested": cfg.backend, "backend": pick_backend(cfg.backend, cfg.dtype),
            **({"server_url": cfg.server_url} if cfg.server_url else {}),
            **({"server": llama_server_info(cfg)} if cfg.backend == "llamacpp" else {})}


def llama_server_info(cfg: ModelConfig) -> dict:
    """What a llamacpp-backend result records of the server: source, build and settings."""
    from common.llamacpp_build import SDIST, SDIST_SHA256, build_dir
    return {"source": SDIST, "source_sha256": SDIST_SHA256, "build": build_dir().name, "slots": cfg.server_slots,
            "ctx_per_slot": cfg.server_ctx, "args": cfg.server_args}


def lazy_llm(resolved, cfg: ModelConfig):
    """A function that loads the model on first call only (resumed runs may need no model)."""
    from common.sampling import LLM

    @functools.lru_cache(maxsize=1)
    def get():
        return LLM(resolved, cfg)
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
