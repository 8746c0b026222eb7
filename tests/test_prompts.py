"""Table-driven tests for code extraction and the prompt protocols (pure functions only)."""
import ast

import pytest

from common.prompts import (PROTOCOLS, defines, extract_code, faithful_completion, faithful_extract,
                            fenced_blocks, get_protocol, program_completion)
from common.results import InputError

TASK = {
    "task_id": "T/0",
    "prompt": "from typing import List\n\n\ndef helper(x):\n    return x + 1\n\n\ndef inc_all(xs: List[int]) -> List[int]:\n    \"\"\"Add one to each.\"\"\"\n",
    "entry_point": "inc_all",
}

GOOD = "def inc_all(xs):\n    return [helper(x) for x in xs]"

EXTRACT_CASES = [
    # (name, text, expected code, expected how)
    ("single fenced block", f"Here:\n```python\n{GOOD}\n```\nDone.", GOOD, "fenced_entry"),
    ("echoed instruction is not code",
     f"Output one ```python block only.\n```python\n{GOOD}\n```", GOOD, "fenced_entry"),
    ("example block before the solution",
     f"```python\nprint(inc_all([1]))\n```\nSolution:\n```python\n{GOOD}\n```", GOOD, "fenced_entry"),
    ("py label", f"```py\n{GOOD}\n```", GOOD, "fenced_entry"),
    ("uppercase label", f"```Python\n{GOOD}\n```", GOOD, "fenced_entry"),
    ("unlabelled fence", f"```\n{GOOD}\n```", GOOD, "fenced_entry"),
    ("unclosed fence (cut by max tokens)", f"```python\n{GOOD}\n", GOOD, "fenced_entry"),
    ("no fence, plain code", GOOD, GOOD, "unfenced"),
    ("block without entry point: largest parsing one",
     "```python\nx = 1\n```\n```python\ndef other():\n    return 2\n```", "def other():\n    return 2", "fenced_largest"),
    ("prose then unfenced code is salvaged",
     f"Sure! Here is the code:\n{GOOD}", GOOD, "salvaged"),
    ("nothing usable", "I cannot help with that.", "", "none"),
    ("empty text", "", "", "none"),
    ("fenced non-python parsing block", "```text\nx = 1\n```", "x = 1", "fenced_other"),
]


@pytest.mark.parametrize("name,text,code,how", EXTRACT_CASES, ids=[c[0] for c in EXTRACT_CASES])
def test_extract_code(name, text, code, how):
    got, got_how = extract_code(text, "inc_all")
    assert (got, got_how) == (code, how)


def test_fenced_blocks_requires_newline_after_fence():
    assert fenced_blocks("use ```python block only.") == []
    assert fenced_blocks("```python\na=1\n```") == [("python", "a=1")]


@pytest.mark.parametrize("code,name,expected", [
    ("def f():\n    pass", "f", True),
    ("class f:\n    pass", "f", True),
    ("def g():\n    def f():\n        pass", "f", False),   # nested, not top level
    ("def f(:", "f", False),                                  # does not parse
    ("f = lambda: 1", "f", False),
])
def test_defines(code, name, expected):
    assert defines(code, name) is expected


def _program(task, completion):
    return task["prompt"] + completion


def test_program_completion_keeps_prompt_imports_and_helpers():
    comp, how = program_completion(TASK, f"```python\n{GOOD}\n```", "inc_all")
    prog = _program(TASK, comp)
    ast.parse(prog)
    assert "from typing import List" in prog and "def helper" in prog
    assert how == "fenced_entry"


def test_program_completion_body_only_is_indented_under_signature():
    comp, how = program_completion(TASK, "```python\nreturn [x + 1 for x in xs]\n```", "inc_all")
    prog = _program(TASK, comp)
    tree = ast.parse(prog)
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "inc_all"][-1]
    assert any(isinstance(n, ast.Return) for n in fn.body)
    assert how.endswith("+body")


def test_program_completion_empty_when_nothing():
    assert program_completion(TASK, "no code here", "inc_all") == ("", "none")


@pytest.mark.parametrize("text,expected", [
    ("Output one ```python block only.\n```python\ndef f(): pass\n```", " block only.\n"),  # defect 2
    ("```python\ndef f(): pass\n```", "\ndef f(): pass\n"),
    ("plain text", "plain text"),
])
def test_faithful_extract_reproduces_original(text, expected):
    assert faithful_extract(text) == expected


def test_faithful_completion_drops_prompt_names():
    comp, how = faithful_completion(TASK, f"```python\n{GOOD}\n```")
    assert how == "faithful_dropped_prompt"
    prog = _program(TASK, comp)
    ast.parse(prog)
    assert "del globals()" in comp   # prompt names are removed, as in the original evaluation


def test_qwen_official_completion_rebuilds_prefilled_block():
    p = get_protocol("qwen-official")
    comp, how = p.to_completion(TASK, GOOD)   # model text continues after the pre-filled fence
    assert how == "fenced_entry"
    ast.parse(_program(TASK, comp))


def test_raw_protocol_keeps_text():
    p = get_protocol("raw")
    assert p.to_completion(TASK, "    return xs\n") == ("    return xs\n", "raw")
    assert p.stop == ("\nclass ", "\ndef ", "\nif __name__", "\nprint(", "\n#")


def test_protocol_registry_and_unknown_name():
    assert set(PROTOCOLS) == {"qwen-official", "he-chat", "he-chat-faithful", "raw"}
    with pytest.raises(InputError):
        get_protocol("nope")


def test_protocol_messages_match_paper_constants():
    q = get_protocol("qwen-official").messages(TASK)
    assert q[0]["content"] == "You are an intelligent programming assistant to produce Python algorithmic solutions"
    assert q[1]["content"] == "Can you complete the following Python function?\n```python\n" + TASK["prompt"] + "\n```"
    h = get_protocol("he-chat").messages(TASK)
    assert h[0]["content"] == "You are a Python coder."
    assert h[1]["content"] == TASK["prompt"] + "\n# Complete the function above."
