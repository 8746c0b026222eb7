"""The procedural math problems (common.mathgen) and the bounded arithmetic evaluator (common.arith).

Every committed problem's answer is recomputed from its ``steps`` by the evaluator, which shares
no code with the generator's own arithmetic; every number a step uses must be in the problem's
text; the committed file is what the documented command writes."""
import json
import re
from fractions import Fraction

import pytest

from common import arith, mathgen
from common.math_benchmarks import PROCEDURAL_PATH


@pytest.fixture(scope="module")
def committed():
    return [json.loads(line) for line in PROCEDURAL_PATH.read_text().splitlines()]


# ---------------------------------------------------------------- the bounded evaluator
@pytest.mark.parametrize("text,value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", Fraction(7, 2)), ("7 // 2", 3), ("7 % 4", 3),
    ("2 ** 10", 1024), ("2^10", 1024), ("-3 + +4", 1), ("1,234 + 1", 1235), ("3 × 4 ÷ 6", 2),
    ("0.1 + 0.2", Fraction(3, 10)), ("2 ** -2", Fraction(1, 4)), ("\u22125 + 2", -3),
])
def test_evaluate(text, value):
    assert arith.evaluate(text) == value


@pytest.mark.parametrize("text,message", [
    ("__import__('os').system('true')", "not part of"), ("open('x')", "not part of"), ("x + 1", "unknown name"),
    ("1 / 0", "division by zero"), ("5 % 0", "division by zero"), ("2 ** 65", "exponent"), ("2 ** 0.5", "exponent"),
    ("9 ** 9 ** 9", "exponent"), ("(10 ** 60) ** 4", "digits"), ("0 ** -1", "zero to a negative"),
    ("1 +", "not an arithmetic"), ("", "empty"), ("1" * 2001, "longer than"), ("+".join(["1"] * 300), "parts"),
    ("[1, 2]", "not part of"), ("1 < 2", "not part of"), ("True + 1", "not part of"),
])
def test_evaluate_refuses(text, message):
    with pytest.raises(arith.ExpressionError, match=message):
        arith.evaluate(text)


def test_evaluate_steps():
    assert arith.evaluate_steps(["x1 = 12", "x2 = x1 + 3 * 5", "x3 = x2 / 3"]) == {"x1": 12, "x2": 27, "x3": 9}
    with pytest.raises(arith.ExpressionError):
        arith.evaluate_steps(["12"])
    with pytest.raises(arith.ExpressionError):
        arith.evaluate_steps(["x1 = y + 1"])


# ---------------------------------------------------------------- the generator
def test_deterministic_for_a_seed():
    assert mathgen.generate(7, 5) == mathgen.generate(7, 5)
    assert mathgen.generate(7, 5) != mathgen.generate(8, 5)
    # problem i of level L does not depend on what else is generated
    assert mathgen.make_problem(7, 3, 4) == mathgen.generate(7, 5)[2 * 5 + 4]


def test_committed_file_is_the_documented_command(committed, tmp_path):
    out = tmp_path / "p.jsonl"
    assert mathgen.write_problems(out) == 300
    assert out.read_bytes() == PROCEDURAL_PATH.read_bytes()
    assert [p["task_id"] for p in committed[:2]] == ["procedural/L1/000", "procedural/L1/001"]
    assert {lv: sum(p["level"] == lv for p in committed) for lv in mathgen.LEVELS} == {lv: 60 for lv in mathgen.LEVELS}
    assert len({p["problem"] for p in committed}) == 300          # no two problems alike


def _numbers(text: str) -> set[int]:
    return {int(x) for x in re.findall(r"\d+", text)}


def test_every_answer_recomputed_independently(committed):
    for p in committed + mathgen.generate(seed=123, per_level=40):
        values = arith.evaluate_steps(p["steps"])
        assert all(v.denominator == 1 and v > 0 for v in values.values()), p["task_id"]
        assert values[f"x{len(p['steps'])}"] == int(p["answer"]), p["task_id"]
        literals = {int(x) for s in p["steps"] for x in re.findall(r"(?<![x\d])\d+", s.split("=", 1)[1])}
        assert literals <= _numbers(p["problem"]), (p["task_id"], literals - _numbers(p["problem"]))
        assert len(p["steps"]) == mathgen.LEVEL_SPECS[p["level"]].steps + 1 + ("dollars" in p["problem"])


def test_levels_get_harder(committed):
    def mean(xs):
        return sum(xs) / len(xs)
    steps = [mean([len(p["steps"]) for p in committed if p["level"] == lv]) for lv in mathgen.LEVELS]
    rich = [mean([any("*" in s or "/" in s for s in p["steps"]) for p in committed if p["level"] == lv])
            for lv in mathgen.LEVELS]
    assert steps == sorted(steps) and steps[0] == 2 and steps[-1] > 6
    assert rich[:2] == [0, 0] and min(rich[2:]) > 0.9


def test_hand_solved_examples():
    """Three problems read and solved by hand (seed 0)."""
    p = mathgen.make_problem(0, 1, 2)
    assert p["problem"] == "Ava has 15 cards. Ava gives 5 cards to a neighbour. How many cards does Ava have now?"
    assert p["answer"] == "10"
    p = mathgen.make_problem(0, 3, 0)
    assert p["problem"] == ("Dev has 34 apples. Dev gives 2 apples to a neighbour. The number of apples Dev has "
                            "doubles (multiplied by 2). Then Dev gets 2 more apples. How many apples does Dev have now?")
    assert p["answer"] == "66"                                          # 34 - 2 = 32, x 2 = 64, + 2 = 66
    p = mathgen.make_problem(0, 5, 1)
    assert p["problem"].endswith("Ben sells every postcard for $3. How many dollars does Ben get from selling them?")
    assert p["answer"] == "117"                         # 77 x 3 = 231, / 3 = 77, + 15 = 92, / 4 = 23, + 16 = 39, x 3
