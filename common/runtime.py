"""Glue between parsed flags and a loaded model: provenance of the model and a lazy loader."""
from __future__ import annotations

import functools


def model_info(resolved, args) -> dict:
    """What result.json records about the model: reference, kind, weights hash, adapter hash."""
    from common.models import dir_sha256
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
