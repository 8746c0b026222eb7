"""Where benchmark records come from (common/benchmark_sources.py): the offline path on the
fixture files (what CI runs, HF_HUB_OFFLINE=1), the hub path through ``datasets.load_dataset``
(exercised with the fixture records served by a stand-in hub, since no hub is reachable here)
giving the same tasks as the file, parquet, and the float that datasets' JSON builder alters."""
import json
from pathlib import Path

import pytest

from common import benchmark_sources as S
from common import benchmarks as B
from common.results import InputError

FIX = Path(__file__).parent / "fixtures"
FILES = {"mbpp": "mbpp.jsonl", "mbpp_sanitized": "sanitized-mbpp.json", "gsm8k": "gsm8k.jsonl",
         "math500": "math500.jsonl", "aime": "aime.jsonl", "humaneval_plus": "HumanEvalPlus.jsonl"}


def _raw(path: Path) -> list[dict]:
    text = path.read_text()
    return json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1, no data variables, and a hub that must never be asked."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in B.DATASETS.values():
        monkeypatch.delenv(spec.env, raising=False)

    def never(*a, **kw):
        raise AssertionError("the hub was contacted while offline")
    monkeypatch.setattr("common.models._hub_reachable", never)


@pytest.mark.parametrize("bench", sorted(FILES))
def test_offline_each_benchmark_loads_its_fixture_and_names_it(offline, bench):
    path = FIX / FILES[bench]
    tasks, info = B.load_tasks(bench, path=str(path), split="test" if bench.startswith("mbpp") else None)
    assert tasks and info["path"] == str(path) and info["path_from"] == "path argument"
    with pytest.raises(InputError, match=B.DATASETS[bench].env) as e:
        B.load_tasks(bench)
    assert "HF_HUB_OFFLINE" in str(e.value) or "no copy" in str(e.value)


@pytest.mark.parametrize("value,want", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_offline_switch(monkeypatch, value, want):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert S.hub_offline() is want


class _Hub:
    """A stand-in for the hub: serves each split of a fixture's records via datasets.Dataset."""

    def __init__(self, rows_by_split, sha="0123456789abcdef" * 2 + "01234567"):
        self.rows_by_split, self.sha, self.calls = rows_by_split, sha, []

    def load_dataset(self, hub_id, config=None, split=None, revision=None):
        from datasets import Dataset
        self.calls.append((hub_id, config, split, revision))
        return Dataset.from_list(self.rows_by_split[split])

    def dataset_info(self, hub_id):
        return type("Info", (), {"sha": self.sha})()


def _serve(monkeypatch, hub):
    import datasets
    import huggingface_hub
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr("common.models._hub_reachable", lambda *a, **kw: True)
    monkeypatch.setattr(datasets, "load_dataset", hub.load_dataset)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: hub)


@pytest.mark.parametrize("bench", ["gsm8k", "math500", "aime"])
def test_hub_path_reads_through_datasets_and_gives_the_files_tasks(monkeypatch, bench):
    spec = B.DATASETS[bench]
    monkeypatch.delenv(spec.env, raising=False)
    want, file_info = B.load_tasks(bench, path=str(FIX / FILES[bench]))
    hub = _Hub({spec.splits[0]: _raw(FIX / FILES[bench])})
    _serve(monkeypatch, hub)
    got, info = B.load_tasks(bench)
    assert got == want
    assert hub.calls == [(spec.hub_id, spec.config, spec.splits[0], hub.sha)]   # read at the resolved commit
    assert (info["hub_id"], info["revision"], info["path_from"]) == (spec.hub_id, hub.sha, "hub")
    assert info["revision_pinned"] is False and info["sha256"] == S.records_sha256(_raw(FIX / FILES[bench]))


def test_hub_mbpp_concatenates_its_splits_in_task_id_order(monkeypatch):
    rows = _raw(FIX / "mbpp.jsonl")
    split_of = {r["task_id"]: next(s for s, (lo, hi) in B.MBPP_SPLITS.items() if lo <= r["task_id"] <= hi)
                for r in rows}
    hub = _Hub({s: [r for r in rows if split_of[r["task_id"]] == s] for s in B.MBPP_HUB_SPLITS})
    monkeypatch.delenv("SELFIMPROVE_DATA_MBPP", raising=False)
    _serve(monkeypatch, hub)
    for split in ("test", "all"):
        got, _ = B.load_tasks("mbpp", split=split)
        assert got == B.load_tasks("mbpp", path=str(FIX / "mbpp.jsonl"), split=split)[0]
    assert [c[2] for c in hub.calls[:4]] == list(B.MBPP_HUB_SPLITS)


def test_humaneval_plus_has_no_hub_copy(monkeypatch):
    monkeypatch.delenv("SELFIMPROVE_DATA_HUMANEVAL_PLUS", raising=False)
    _serve(monkeypatch, _Hub({}))
    with pytest.raises(InputError, match="no copy in this schema"):
        B.load_tasks("humaneval_plus")


def test_local_files_keep_floats_exact():
    """read_records returns the file's numbers as written (datasets' JSON builder read this
    fixture's 0.3 as 0.30000000000000004, so local files do not go through it)."""
    rows = S.read_records(FIX / "HumanEvalPlus.jsonl")
    assert rows == _raw(FIX / "HumanEvalPlus.jsonl")
    assert 0.3 in rows[0]["base_input"][1]


def test_parquet_file_gives_the_same_tasks(tmp_path):
    import pandas as pd
    p = tmp_path / "test-00000-of-00001.parquet"
    pd.DataFrame(_raw(FIX / "math500.jsonl")).to_parquet(p)
    assert B.load_tasks("math500", path=str(p))[0] == B.load_tasks("math500", path=str(FIX / "math500.jsonl"))[0]
