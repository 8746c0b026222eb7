"""Shared fixtures. The real embedded model is loaded once per session (a few seconds)."""
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def resolved_default():
    from common.models import resolve_model
    return resolve_model()


@pytest.fixture(scope="session")
def llm(resolved_default):
    """The embedded default model on the CPU engine (float32)."""
    import torch
    from common.sampling import LLM
    torch.set_num_threads(2)
    return LLM(resolved_default, backend="hf", dtype="float32", max_batch=8)


@pytest.fixture(scope="session")
def humaneval_tasks():
    from common.benchmarks import load_tasks
    return load_tasks("humaneval")[0]
