"""Math benchmarks (common.math_benchmarks): the procedural set and CHAMP from its wheel, gold forms,
and the per-sample grading that evals/score.py writes (flexible, strict and faithful verdicts)."""
import json
from pathlib import Path

import pytest

from common import math_benchmarks as M
from common.answer_check import AnswerChecker
from common.results import InputError, file_sha256

FIX = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker() as c:
        yield c


def test_procedural():
    tasks, info = M.load_math_tasks("procedural", limit=5)
    assert info["n_tasks_total"] == 300 and info["n_tasks"] == 5 and info["levels"] == {str(lv): 60 for lv in range(1, 6)}
    assert info["task_ids"] == [f"procedural/L1/00{i}" for i in range(5)]
    assert info["sha256"] == file_sha256(M.PROCEDURAL_PATH) and info["path_from"] == "repository file"
    assert tasks[0]["golds"] == [tasks[0]["answer"]] and tasks[0]["answer_kind"] == "integer"


def test_champ_from_the_wheel():
    tasks, info = M.load_math_tasks("champ")
    assert info["n_tasks"] == 270 and info["path_from"] == "package" and info["path"].endswith("v0.json")
    assert info["sha256"] == "72fa7727c8c3d4377d297b2cd171dc35ad86e2cfe9df2043131ba8a5389e5a71"
    assert info["answer_kinds"] == {"integer": 79, "expression": 66, "text": 73, "number": 47, "set": 5}
    assert tasks[0]["task_id"] == "champ/P_Combinatorics_1" and tasks[0]["answer"] == "239"
    assert tasks[0]["problem"].startswith("Let a string consist of digit 1, 2, 3.")
    ints, info_int = M.load_math_tasks("champ_int")
    assert len(ints) == 79 and info_int["sha256"] == info["sha256"]
    assert all(t["answer_kind"] == "integer" and t["answer"].lstrip("-").isdigit() for t in ints)
    assert {t["category"] for t in ints} == {"Combinatorics", "Inequality", "Number-Theory", "Polynomial", "Sequence"}


@pytest.mark.parametrize("raw,answer,kind,golds", [
    ("239", "239", "integer", ["239"]),
    ("@@2^(n-1)@@", "2^(n-1)", "expression", ["2^(n-1)"]),
    ("@@C(10, 5)@@, or equivalently @@252@@", "C(10, 5), or equivalently 252", "expression", ["C(10, 5)", "252"]),
    ("@@(20*10^15-2)/17@@, or equivalently 1176470588235294", "(20*10^15-2)/17, or equivalently 1176470588235294",
     "expression", ["(20*10^15-2)/17", "1176470588235294"]),
    ("@@5/14@@, or approximately 35.7%", "5/14, or approximately 35.7%", "expression", ["5/14"]),
    ("@@k-2@@ (i.e., all of them)", "k-2 (i.e., all of them)", "expression", ["k-2"]),
    ("The limit exists and is equal to @@2/3@@", "The limit exists and is equal to 2/3", "expression", ["2/3"]),
    ("98 values", "98 values", "number", ["98"]),
    ("0 is the only possible value", "0 is the only possible value", "number", ["0"]),
    ("100 (i.e., all values)", "100 (i.e., all values)", "number", ["100"]),
    ("The function is periodic, with a period of 8", "The function is periodic, with a period of 8", "number", ["8"]),
    ("1, 4 and 9", "1, 4 and 9", "set", ["1, 4, 9"]),
    ("376 and 625", "376 and 625", "set", ["376, 625"]),
    ("No", "No", "text", ["No"]),
    ("At least 1 number", "At least 1 number", "text", ["At least 1 number"]),
    ("@@x=0, y=2@@ and @@x=9, y=11@@", "x=0, y=2 and x=9, y=11", "text", ["x=0, y=2 and x=9, y=11"]),
    ("Yes, and the sequence is @@1/2^3, 1/2^6, 1/2^9, ...@@", "Yes, and the sequence is 1/2^3, 1/2^6, 1/2^9, ...",
     "text", ["Yes, and the sequence is 1/2^3, 1/2^6, 1/2^9, ..."]),
])
def test_champ_golds(raw, answer, kind, golds):
    assert M.champ_golds(raw, answer) == (kind, golds)


def test_gsm8k_math500_aime_through_their_files():
    g, info = M.load_math_tasks("gsm8k", path=str(FIX / "gsm8k.jsonl"))
    assert [t["golds"] for t in g] == [["29"], ["1260000"], ["-8"]] and info["task_ids"][0] == "gsm8k/0"
    m, _ = M.load_math_tasks("math500", path=str(FIX / "math500.jsonl"))
    assert m[0]["answer_kind"] == "expression" and m[0]["golds"] == [m[0]["answer"]]
    a, _ = M.load_math_tasks("aime", path=str(FIX / "aime.jsonl"))
    assert [t["answer"] for t in a] == ["24", "24", "0"]


@pytest.mark.parametrize("bench,kwargs,message", [
    ("nope", {}, "unknown math benchmark"), ("champ", {"path": "x.jsonl"}, "takes no data path"),
    ("gsm8k", {}, "needs a local data file"), ("procedural", {"limit": 0}, "--limit must be >= 1"),
    ("procedural", {"path": "/nonexistent.jsonl"}, "no such file"),
])
def test_load_errors(bench, kwargs, message):
    with pytest.raises(InputError, match=message):
        M.load_math_tasks(bench, **kwargs)


PROC = {"answer": "1260000", "golds": ["1260000"], "answer_kind": "integer", "solution": "... \n#### 1,260,000"}
BOX = {"answer": r"\frac{1}{4}", "golds": [r"\frac{1}{4}"], "answer_kind": "expression"}
CHAMP_TEXT = {"answer": "No", "golds": ["No"], "answer_kind": "text"}
CHAMP_FORMS = {"answer": "C(10, 5)", "golds": ["C(10, 5)", "252"], "answer_kind": "expression"}


# completion, task, style -> (answer, passed, strict_answer, strict_passed, faithful_answer, faithful_passed)
@pytest.mark.parametrize("completion,task,style,exp", [
    ("1,200 * 1,050 = 1,260,000\n#### 1,260,000", PROC, "hash", ("1260000", True, "1260000", True, "1", True)),
    ("#### 1260000", PROC, "hash", ("1260000", True, "1260000", True, "1260000", False)),   # the paper: gold "1"
    ("#### $1,260,000.00", PROC, "hash", ("1260000.00", True, None, False, None, False)),
    ("The town collects **1,260,000** dollars.", PROC, "hash", ("1260000", True, None, False, None, False)),
    ("#### 5\n#### 1260000", PROC, "hash", ("1260000", True, "1260000", True, "5", False)),
    ("#### 1,260", PROC, "hash", ("1260", False, "1260", False, "1", True)),     # the paper scores it right
    (r"so $\boxed{\dfrac{1}{4}}$", BOX, "boxed", (r"\dfrac{1}{4}", True, r"\dfrac{1}{4}", True, r"\dfrac{1}{4}", False)),
    (r"it is 0.25", BOX, "boxed", ("0.25", True, None, False, None, False)),
    (r"\boxed{0.25} then \boxed{", BOX, "boxed", (None, False, None, False, None, False)),
    (r"\boxed{\text{No}}", CHAMP_TEXT, "boxed", (r"\text{No}", True, r"\text{No}", True, r"\text{No}", True)),
    (r"\boxed{no.}", CHAMP_TEXT, "boxed", ("no.", True, "no.", True, "no.", False)),
    (r"\boxed{252}", CHAMP_FORMS, "boxed", ("252", True, "252", True, "252", False)),
    (r"\boxed{\binom{10}{5}}", CHAMP_FORMS, "boxed", (r"\binom{10}{5}", True, r"\binom{10}{5}", True,
                                                       r"\binom{10}{5}", False)),
])
def test_grade_sample(checker, completion, task, style, exp):
    row = M.grade_sample(completion, task, style, checker, faithful=True)
    got = tuple(row[k] for k in ("answer", "passed", "strict_answer", "strict_passed", "faithful_answer",
                                 "faithful_passed"))
    assert got == exp, row
    assert row["status"] in ("equal", "different", "no_answer") and row["gold"] == task["answer"]
    assert ("golds" in row) == (len(task["golds"]) > 1)


# completion, task, style, finish_reason -> (answer, extraction, passed): a text the token budget cut off
# has no final number, so the last-number fallback is withdrawn; an answer it did write still counts
@pytest.mark.parametrize("completion,task,style,finish,exp", [
    ("= abc - (a+b-c) = 1260000 - (a+b", PROC, "hash", "length", (None, "truncated", False)),
    ("= abc - (a+b-c) = 1260000 - (a+b", PROC, "hash", "eos", ("1260000", "last_number", True)),
    ("= abc - (a+b-c) = 1260000 - (a+b", PROC, "hash", None, ("1260000", "last_number", True)),
    ("#### 1260000\nLet me check: 1,200 * 1,0", PROC, "hash", "length", ("1260000", "hash", True)),
    (r"so $\boxed{\frac{1}{4}}$ and then 0.25 * 4 = 1, so 0.", BOX, "boxed", "length",
     (r"\frac{1}{4}", "boxed", True)),
    (r"it is 0.25, and 0.25 \cdot 4 = 0.25", BOX, "boxed", "length", (None, "truncated", False)),
    (r"it is 0.25, and 0.25 \cdot 4 = 0.25", BOX, "boxed", "stop", ("0.25", "last_number", True)),
])
def test_grade_samples_cut_off_text_has_no_last_number(checker, completion, task, style, finish, exp):
    bench = "procedural" if style == "hash" else "math500"
    row = {"task_id": "t", "completion": completion, **({"finish_reason": finish} if finish else {})}
    got = M.grade_samples([row], {"t": task}, bench, checker)[0]
    assert (got["answer"], got["extraction"], got["passed"]) == exp, got
    assert got["status"] == ("no_answer" if exp[0] is None else "equal")


def test_regrade_rows_of_earlier_invocations(checker):
    """A resumed run grades its earlier rows again from the stored text: a row graded by an older
    rule (a cut-off text read by its last number) is corrected and counted; rows generated in this
    invocation are left as they are."""
    from common.tts_math import math_bench, regrade
    stale = {"task_id": "a", "completion": "so 1,200 * 1,050 = 1260000 - (", "finish_reason": "length",
             "answer": "1260000", "passed": True, "strict_passed": False, "faithful_passed": False}
    fine = {"task_id": "a", "completion": "#### 1260000", "finish_reason": "eos", "answer": "1260000",
            "passed": True, "strict_passed": True, "faithful_passed": False}
    fresh = {**stale, "task_id": "b"}
    rows, counts = regrade([stale, fine, fresh], {"a"}, {"a": PROC, "b": PROC}, math_bench("procedural"), checker)
    assert (rows[0]["answer"], rows[0]["passed"], rows[0]["extraction"]) == (None, False, "truncated")
    assert rows[1]["passed"] and rows[1]["faithful_passed"] is False and rows[2] == fresh
    assert counts == {"rows": 2, "answers_changed": 1, "verdicts_changed": 1}


def test_run_backend_keeps_the_earlier_record_and_refuses_mixing(tmp_path):
    from common.tts_math import run_backend
    assert run_backend(tmp_path, "int8") == {}
    (tmp_path / "result.json").write_text(json.dumps({"backend": "int8"}))
    assert run_backend(tmp_path, "int8") == {"backend": "int8"} == run_backend(tmp_path, None)
    with pytest.raises(InputError, match="generated on the int8 backend; resume it with --backend int8"):
        run_backend(tmp_path, "hf")
