"""Procedural multi-step arithmetic word problems with exact integer answers, by difficulty level.

An offline math source written for this repository (it is not, and is never named as, any
public benchmark): a person's count of one kind of item changes over a chain of steps told in
plain sentences (buys more, gives some away, packs of several, doubles, shares equally and keeps
one share, uses a fraction), and the question asks for the count at the end or for the money it
brings. Every number in a problem appears in its text as digits.

Levels 1-5: the number of steps grows (2, 3, 4, 5, 6), so do the numbers, and from level 3 on
multiplication, equal sharing and fractions join addition and subtraction; level 4 and 5
problems may end by selling the items at a price. Every intermediate count is a positive
integer (shares and fractions are drawn only where they divide exactly).

Each problem records its arithmetic as ``steps`` (``x1 = 12``, ``x2 = x1 + 3 * 5``, ...; the
last name is the answer): tests/test_mathgen.py evaluates them with the bounded evaluator
(common.arith), independently of the generator's own arithmetic, and checks each step's numbers
against the text. Generation is deterministic for a seed: problem ``i`` of level ``L`` comes from
``random.Random(f"{seed}:{L}:{i}")``, whatever else is generated.

The committed set (data/procedural_math.jsonl, 60 problems per level, seed 0) is made by
    python -c "from common.mathgen import write_problems; write_problems('data/procedural_math.jsonl')"
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

LEVELS = (1, 2, 3, 4, 5)
DEFAULT_SEED = 0
DEFAULT_PER_LEVEL = 60
NAMES = ("Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonah", "Kira",
         "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara")
FRIENDS = ("a neighbour", "a classmate", "a cousin", "a friend", "the school club")
ITEMS = (("sticker", "stickers"), ("marble", "marbles"), ("stamp", "stamps"), ("seashell", "seashells"),
         ("pencil", "pencils"), ("apple", "apples"), ("postcard", "postcards"), ("bead", "beads"),
         ("card", "cards"), ("coin", "coins"))
MULTIPLIERS = {2: "doubles", 3: "triples"}


@dataclass(frozen=True)
class Level:
    steps: int            # steps after the starting count
    start_max: int        # largest starting count
    add_max: int          # largest number added or taken away
    rich: bool            # multiplication, sharing and fractions allowed
    sell: bool            # may end with a price question


LEVEL_SPECS = {1: Level(1, 20, 10, False, False), 2: Level(2, 50, 25, False, False),
               3: Level(3, 60, 30, True, False), 4: Level(4, 90, 40, True, True),
               5: Level(5, 150, 60, True, True)}


@dataclass
class _Story:
    """A problem being written: its sentences, its steps, the running count."""
    name: str
    item: tuple[str, str]
    count: int
    sentences: list
    steps: list

    def step(self, sentence: str, expr: str, value: int) -> None:
        self.sentences.append(sentence)
        self.steps.append(f"x{len(self.steps) + 1} = {expr}")
        self.count = value

    @property
    def var(self) -> str:
        return f"x{len(self.steps)}"


def _moves(s: _Story, lv: Level, rng: random.Random) -> list:
    """The steps that keep the count a positive integer from here: (sentence, expression, value)."""
    x, pl, v = s.count, s.item[1], s.var
    b = rng.randint(2, lv.add_max)
    out = [(f"Then {s.name} gets {b} more {pl}.", f"{v} + {b}", x + b)]
    if x > 2:
        g = rng.randint(2, min(x - 1, lv.add_max))
        out.append((f"{s.name} gives {g} {pl} to {rng.choice(FRIENDS)}.", f"{v} - {g}", x - g))
    if lv.rich:
        k, m = rng.randint(2, 5), rng.randint(2, 12)
        out.append((f"{s.name} buys {k} packs with {m} {pl} in each pack.", f"{v} + {k} * {m}", x + k * m))
        if x <= 200:
            f = rng.choice(sorted(MULTIPLIERS))
            out.append((f"The number of {pl} {s.name} has {MULTIPLIERS[f]} (multiplied by {f}).", f"{v} * {f}", x * f))
        shares = [d for d in range(2, 10) if x % d == 0 and x // d >= 2]
        if shares:
            d = rng.choice(shares)
            out.append((f"{s.name} shares the {pl} equally among {d} people, {s.name} included, and keeps "
                        f"one share.", f"{v} / {d}", x // d))
        fracs = [(p, q) for q in (2, 3, 4, 5) for p in range(1, q) if math.gcd(p, q) == 1 and x % q == 0]
        if fracs:
            p, q = rng.choice(fracs)
            out.append((f"{s.name} uses {p}/{q} of the {pl} for a project.", f"{v} - {v} * {p} / {q}", x - x * p // q))
    return out


def make_problem(seed: int, level: int, index: int) -> dict:
    """Problem ``index`` of ``level`` for ``seed``: ``task_id``, ``level``, ``problem``,
    ``answer`` (an integer string), ``steps``, ``seed``."""
    lv = LEVEL_SPECS[level]
    rng = random.Random(f"{seed}:{level}:{index}")
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(3, lv.start_max)
    s = _Story(name, item, 0, [], [])
    s.step(f"{name} has {a} {item[1]}.", str(a), a)
    for i in range(lv.steps):
        moves = _moves(s, lv, rng)
        rich = [m for m in moves if "*" in m[1] or "/" in m[1]]
        sentence, expr, value = rng.choice(rich) if (rich and i % 2 == 1) else rng.choice(moves)
        s.step(sentence, expr, value)
    if lv.sell and rng.random() < 0.5:
        price = rng.randint(2, 9)
        s.step(f"{name} sells every {item[0]} for ${price}.", f"{s.var} * {price}", s.count * price)
        question = f"How many dollars does {name} get from selling them?"
    else:
        question = f"How many {item[1]} does {name} have now?"
    return {"task_id": f"procedural/L{level}/{index:03d}", "level": level,
            "problem": " ".join(s.sentences + [question]), "answer": str(s.count), "steps": s.steps,
            "seed": seed}


def generate(seed: int = DEFAULT_SEED, per_level: int = DEFAULT_PER_LEVEL,
             levels: tuple[int, ...] = LEVELS) -> list[dict]:
    """``per_level`` problems of each level, level by level; deterministic for ``seed``."""
    return [make_problem(seed, lv, i) for lv in levels for i in range(per_level)]


def write_problems(path: str | Path, seed: int = DEFAULT_SEED, per_level: int = DEFAULT_PER_LEVEL) -> int:
    """Write :func:`generate`'s problems as JSONL to ``path``; returns how many."""
    from common.results import write_jsonl_atomic
    rows = generate(seed, per_level)
    write_jsonl_atomic(Path(path), rows)
    return len(rows)
