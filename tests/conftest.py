"""Shared fixtures. The real embedded model is loaded once per session (a few seconds).

:func:`load_script` is the one way tests import a script (``evals/score.py`` ...): scripts are
files, not an installed package, so each is loaded once by path under the module name
``script_<dir>_<name>`` and cached; no test touches ``sys.path``."""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_script(relpath: str):
    """The module of a repository script, e.g. ``load_script("evals/score.py")``."""
    path = REPO / relpath
    name = "script_" + "_".join(Path(relpath).with_suffix("").parts)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# no test asks the hub: benchmarks and models come from local files (CI has no network)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
