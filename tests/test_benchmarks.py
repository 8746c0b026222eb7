"""Loaders on tiny fixture files in the exact public schemas, plus their error cases.

Generated test programs are run in a child Python process (they are our own fixture code).
"""
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common import benchmarks as B
from common.results import InputError

FIX = Path(__file__).parent / "fixtures"
HEP = FIX / "HumanEvalPlus.jsonl"
MBPP = FIX / "mbpp.jsonl"
MBPP_SAN = FIX / "sanitized-mbpp.json"
GSM8K = FIX / "gsm8k.jsonl"
MATH500 = FIX / "math500.jsonl"
AIME = FIX / "aime.jsonl"


def run_program(task: dict, completion: str) -> subprocess.CompletedProcess:
    program = (task["prompt"] + completion + "\n" + task["test"] + "\n"
               + f"check({task['entry_point']})\n")
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=30)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def rows(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def write_jsonl(p: Path, rs: list[dict]) -> Path:
    p.write_text("".join(json.dumps(r) + "\n" for r in rs))
    return p


# ---------------------------------------------------------------- humaneval (package)
def test_humaneval_default_unchanged():
    tasks, info = B.load_tasks("humaneval", limit=3)
    assert [t["task_id"] for t in tasks] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert info["n_tasks_total"] == 164 and info["n_tasks"] == 3
    assert info["sha256"] == sha(B.humaneval_path())


# ---------------------------------------------------------------- HumanEval+
def test_humaneval_plus_loads_fixture():
    tasks, info = B.load_tasks("humaneval_plus", path=str(HEP))
    assert [t["task_id"] for t in tasks] == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    assert info["sha256"] == sha(HEP) and info["inputs"] == "base+plus"
    assert info["plus_inputs_present"] and info["n_tasks_without_plus"] == 0
    for t in tasks:
        assert {"task_id", "prompt", "test", "entry_point", "contract", "atol"} <= set(t)
        assert "def check(candidate)" in t["test"]
    _, info_base = B.load_tasks("humaneval_plus_base", path=str(HEP))
    assert info_base["inputs"] == "base"


def _hep(bench="humaneval_plus"):
    return {t["task_id"]: t for t in B.load_tasks(bench, path=str(HEP))[0]}


def test_humaneval_plus_canonical_solutions_pass():
    for t in _hep().values():
        r = run_program(t, t["canonical_solution"])
        assert r.returncode == 0, (t["task_id"], r.stderr)


@pytest.mark.parametrize("task_id,completion,passes_base,passes_plus", [
    # wrong everywhere
    ("HumanEval/0", "    return False\n", False, False),
    # right on the base inputs, wrong on a plus input ([1.0, 1.0], 0.01)
    ("HumanEval/0", "    return len(numbers) > 5\n", True, False),
    # float within atol passes; float off by 0.004 on a plus input fails
    ("HumanEval/2", "    return number - int(number)\n", True, True),
    ("HumanEval/2", "    return round(number % 1.0, 2)\n", True, False),
    # a different root (Newton from the right) is still a root: property check, not equality
    ("HumanEval/32",
     "    x = 100.0\n    for _ in range(500):\n"
     "        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
     "        x = x - poly(xs, x) / d\n    return x\n", True, True),
    ("HumanEval/32", "    return 0.0\n", False, False),
])
def test_humaneval_plus_checks(task_id, completion, passes_base, passes_plus):
    assert (run_program(_hep("humaneval_plus_base")[task_id], completion).returncode == 0) \
        is passes_base
    r = run_program(_hep("humaneval_plus")[task_id], completion)
    assert (r.returncode == 0) is passes_plus, r.stderr
    if not passes_plus:
        assert "AssertionError" in r.stderr


def test_humaneval_plus_reference_failure_is_harness_error(tmp_path):
    rs = rows(HEP)
    rs[1]["plus_input"] = [["not a number"]]
    t = {x["task_id"]: x for x in
         B.load_tasks("humaneval_plus", path=str(write_jsonl(tmp_path / "h.jsonl", rs)))[0]}
    r = run_program(t["HumanEval/2"], "    return number % 1.0\n")
    assert r.returncode != 0 and "HarnessError" in r.stderr


def test_humaneval_plus_without_plus_inputs(tmp_path):
    rs = rows(HEP)
    for r in rs:
        r["plus_input"] = []
    p = write_jsonl(tmp_path / "noplus.jsonl", rs)
    with pytest.raises(InputError, match="plus_input is empty for all 3 tasks"):
        B.load_tasks("humaneval_plus", path=str(p))
    tasks, info = B.load_tasks("humaneval_plus_base", path=str(p))
    assert len(tasks) == 3 and not info["plus_inputs_present"]


def test_humaneval_plus_gz_and_env(tmp_path, monkeypatch):
    gz = tmp_path / "HumanEvalPlus.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(HEP.read_text())
    monkeypatch.setenv("SELFIMPROVE_DATA_HUMANEVAL_PLUS", str(gz))
    tasks, info = B.load_tasks("humaneval_plus", limit=2)
    assert len(tasks) == 2 and info["n_tasks_total"] == 3
    assert info["sha256"] == sha(gz) and info["path_from"] == "$SELFIMPROVE_DATA_HUMANEVAL_PLUS"


def test_humaneval_plus_hf_export_is_rejected_with_hint(tmp_path):
    r = rows(HEP)[0]
    hf = {k: r[k] for k in ("task_id", "prompt", "canonical_solution", "entry_point")}
    hf["test"] = "def check(candidate): pass"
    with pytest.raises(InputError, match="'contract', 'base_input', 'plus_input', 'atol'.*release"):
        B.load_tasks("humaneval_plus", path=str(write_jsonl(tmp_path / "hf.jsonl", [hf])))


# ---------------------------------------------------------------- MBPP
def test_mbpp_full_splits():
    tasks, info = B.load_tasks("mbpp", path=str(MBPP))
    assert [t["task_id"] for t in tasks] == ["Mbpp/11", "Mbpp/12"] and info["split"] == "test"
    assert info["sha256"] == sha(MBPP)
    assert info["entry_point_methods"] == {"defined": 2, "first_call": 0}
    for split, ids in [("train", ["Mbpp/601"]), ("validation", ["Mbpp/520"]),
                       ("prompt", ["Mbpp/2"]), ("all", ["Mbpp/2", "Mbpp/11", "Mbpp/12",
                                                         "Mbpp/520", "Mbpp/601"])]:
        assert [t["task_id"] for t in B.load_tasks("mbpp", path=str(MBPP), split=split)[0]] == ids
    with pytest.raises(InputError, match="unknown MBPP split"):
        B.load_tasks("mbpp", path=str(MBPP), split="dev")


def test_mbpp_full_task_shape_and_execution():
    tasks = {t["task_id"]: t for t in B.load_tasks("mbpp", path=str(MBPP), split="all")[0]}
    t = tasks["Mbpp/12"]
    assert t["entry_point"] == "circle_area" and t["source_task_id"] == 12
    assert t["prompt"] == ('"""\nWrite a function to compute the area of a circle given its '
                           'radius.\nassert math.isclose(circle_area(1), 3.141592653589793, '
                           'rel_tol=0.001)\n"""\n')
    assert t["test"].startswith("import math")             # test_setup_code
    assert "circle_area(10)" not in t["test"]               # challenge tests not run
    assert tasks["Mbpp/11"]["entry_point"] == "shared_items"   # not the builtin set()
    for tid in ("Mbpp/11", "Mbpp/12"):
        r = run_program(tasks[tid], tasks[tid]["code"])
        assert r.returncode == 0, r.stderr
    assert run_program(tasks["Mbpp/12"], "def circle_area(r):\n    return 3 * r * r\n"
                       ).returncode != 0


def test_mbpp_sanitized():
    tasks, info = B.load_tasks("mbpp_sanitized", path=str(MBPP_SAN))
    assert [t["task_id"] for t in tasks] == ["Mbpp/11", "Mbpp/12"]
    assert info["sha256"] == sha(MBPP_SAN)
    t = tasks[1]
    assert t["description"].startswith("Write a function to compute the area")
    assert t["test"].startswith("import math")              # test_imports
    assert run_program(t, t["code"]).returncode == 0
    train = B.load_tasks("mbpp_sanitized", path=str(MBPP_SAN), split="train")[0]
    assert [x["task_id"] for x in train] == ["Mbpp/604"]


@pytest.mark.parametrize("test,code,exp", [
    ("assert set(similar(a, b)) == set(x)", "def similar(a, b):\n    pass", ("similar", "defined")),
    ("assert math.isclose(area(1), 3.14)", "", ("area", "first_call")),
    ("assert func(x) == 1", "def helper():\n    pass\ndef func(x):\n    pass", ("func", "defined")),
    ("assert len(f(1)) == 2", "not python ((", ("f", "first_call")),
    ("assert sorted(g([3, 1])) == [1, 3]", "def g(x): return x", ("g", "defined")),
])
def test_mbpp_entry_point(test, code, exp):
    assert B.mbpp_entry_point(test, code) == exp


@pytest.mark.parametrize("test", ["assert True", "assert len([1]) == 1", "assert (", ""])
def test_mbpp_entry_point_errors(test):
    with pytest.raises(InputError):
        B.mbpp_entry_point(test, "")


# ---------------------------------------------------------------- math
def test_gsm8k():
    tasks, info = B.load_tasks("gsm8k", path=str(GSM8K))
    assert [t["answer"] for t in tasks] == ["29", "1260000", "-8"]
    assert tasks[0]["task_id"] == "gsm8k/0" and tasks[0]["problem"].startswith("Mia buys")
    assert tasks[1]["solution"].endswith("#### 1,260,000")
    assert info["sha256"] == sha(GSM8K)


def test_math500():
    tasks, info = B.load_tasks("math500", path=str(MATH500))
    assert tasks[0]["task_id"] == "test/precalculus/807.json"
    assert tasks[0]["answer"] == r"\left( 3, \frac{\pi}{2} \right)"
    assert {"problem", "solution", "subject", "level", "unique_id"} <= set(tasks[0])
    assert info["sha256"] == sha(MATH500) and info["n_tasks"] == 4


def test_aime():
    tasks, info = B.load_tasks("aime", path=str(AIME))
    assert [(t["task_id"], t["answer"]) for t in tasks] == [("aime/60", "24"), ("aime/61", "24"),
                                                            ("aime/62", "0")]
    assert info["sha256"] == sha(AIME) and tasks[0]["url"].startswith("https://")


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("bench,src,drop", [
    ("humaneval_plus", HEP, "plus_input"), ("mbpp", MBPP, "test_setup_code"),
    ("gsm8k", GSM8K, "answer"), ("math500", MATH500, "unique_id"), ("aime", AIME, "url"),
])
def test_wrong_schema_names_missing_field(tmp_path, bench, src, drop):
    rs = rows(src)
    del rs[-1][drop]
    p = write_jsonl(tmp_path / "bad.jsonl", rs)
    with pytest.raises(InputError, match=f"record {len(rs)}.*'{drop}'"):
        B.load_tasks(bench, path=str(p), split="all" if bench == "mbpp" else None)


def test_wrong_schema_sanitized_json_array(tmp_path):
    rs = json.loads(MBPP_SAN.read_text())
    del rs[0]["test_imports"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(rs))
    with pytest.raises(InputError, match="'test_imports'"):
        B.load_tasks("mbpp_sanitized", path=str(p))


@pytest.mark.parametrize("bench", ["humaneval_plus", "mbpp", "mbpp_sanitized", "gsm8k",
                                   "math500", "aime"])
def test_missing_file_and_missing_path(tmp_path, monkeypatch, bench):
    with pytest.raises(InputError, match="no such file"):
        B.load_tasks(bench, path=str(tmp_path / "nope.jsonl"))
    env = B.DATASETS[B._DATASET_OF[bench]].env
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(InputError, match=env):
        B.load_tasks(bench)


def test_other_input_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GSM8K.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(InputError, match="line 2"):
        B.load_tasks("gsm8k", path=str(bad))
    nohash = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "it is 5"}])
    with pytest.raises(InputError, match="no '####'"):
        B.load_tasks("gsm8k", path=str(nohash))
    r = rows(AIME)[0]
    r["answer"] = "1234"
    with pytest.raises(InputError, match="not an integer in 0..999"):
        B.load_tasks("aime", path=str(write_jsonl(tmp_path / "a.jsonl", [r])))
    with pytest.raises(InputError, match="unknown benchmark"):
        B.load_tasks("humaneval_pluss")
    with pytest.raises(InputError, match="no split option"):
        B.load_tasks("gsm8k", path=str(GSM8K), split="test")
    with pytest.raises(InputError, match="--limit"):
        B.load_tasks("gsm8k", path=str(GSM8K), limit=0)
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no records"):
        B.load_tasks("gsm8k", path=str(empty))


def test_json_array_and_jsonl_sniffing(tmp_path):
    arr = tmp_path / "gsm8k.json"
    arr.write_text(json.dumps(rows(GSM8K)))
    jl = tmp_path / "gsm8k_export.json"          # HF to_json writes JSONL even as .json
    jl.write_text(GSM8K.read_text())
    assert B.load_tasks("gsm8k", path=str(arr))[0] == B.load_tasks("gsm8k", path=str(jl))[0]


def test_parquet_without_engine_is_a_clear_error(tmp_path, monkeypatch):
    for engine in ("pyarrow", "fastparquet"):      # as on a machine without a parquet engine
        monkeypatch.setitem(sys.modules, engine, None)
    p = tmp_path / "test-00000-of-00001.parquet"
    p.write_bytes(b"PAR1")
    with pytest.raises(InputError, match="parquet"):
        B.load_tasks("math500", path=str(p))


def test_problems_bench_is_the_pool_as_humaneval_tasks_whose_references_pass(tmp_path):
    from common.sandbox_humaneval import score_humaneval
    tasks, info = B.load_tasks("problems")
    assert info["n_tasks"] == 42 and info["path_from"] == "default" and tasks[0]["task_id"] == "ext-001"
    assert all(t["prompt"].endswith('"""\n') and t["test"].lstrip().startswith("def check(candidate):")
               for t in tasks)
    by_id = {t["task_id"]: t for t in tasks}
    results = score_humaneval(by_id, [{"task_id": t["task_id"], "completion": t["canonical_solution"]} for t in tasks])
    assert [r.status for r in results] == ["passed"] * 42
    wrong = score_humaneval(by_id, [{"task_id": "ext-001", "completion": "    return value\n"}])
    assert wrong[0].status != "passed"                       # clamp without clamping fails its asserts
    with pytest.raises(InputError, match="problems file not found"):
        B.load_tasks("problems", path=str(tmp_path / "nope.jsonl"))
