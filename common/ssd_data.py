"""SSD training data (recipe/ssd.py): the prompt pool's split, the response filter of the
minimal arm, the verifier-aware arm's acceptance, conversation records and the declared mix.

Two arms from the same sampled rows, never merged:

* ``minimal`` (the published recipe): every sample except empty responses, stubs (the entry
  point's body is only ``pass``/``...``/``raise``/a constant) and then the shortest
  ``drop_shortest`` share of what is left (by generated tokens, ties by order); no correctness
  filter;
* ``verifier`` (verifier-aware SSD): the samples that pass their prompt's tests in the sandbox
  (empty and stub responses excluded; no length cut, so a short correct answer stays).

Records are ``{"messages": [system?, user, assistant], "arm", "task_id", "sample_index"}``: the
prompt exactly as the evaluation protocol renders it, the assistant turn the raw sample (after the
protocol's pre-filled text, if any). Pure functions.
"""
from __future__ import annotations

import ast
import hashlib
import math
from collections import Counter

from common.results import InputError

FLAWS = ("empty", "stub")


def response_flaw(raw: str, completion: str, task: dict) -> str | None:
    """``"empty"`` (nothing but whitespace), ``"stub"`` (the program's entry point has no real
    body), or None. A response without extractable code is neither (it is kept, and counted by
    its extraction)."""
    from common.problems import _trivial_body
    if not (raw or "").strip():
        return "empty"
    if not (completion or "").strip():
        return None
    try:
        tree = ast.parse(task["prompt"] + completion)
    except (SyntaxError, ValueError):
        return None
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name == task["entry_point"]]
    return "stub" if defs and _trivial_body(defs[-1]) else None


def sample_length(row: dict) -> int:
    """Length of a sample for the shortest-share cut: its generated tokens, else its characters."""
    n = row.get("n_tokens")
    return int(n) if n is not None else len(row.get("raw") or "")


def minimal_filter(rows: list[dict], tasks_by_id: dict, drop_shortest: float) -> tuple[list[dict], dict]:
    """The minimal arm's filter: drop empty and stub responses, then the shortest
    ``drop_shortest`` share (floor) of the rest. Returns (kept rows in input order, counts)."""
    if not 0 <= drop_shortest < 1:
        raise InputError(f"--drop-shortest must be in [0, 1), got {drop_shortest}")
    flaws = Counter()
    clean = []
    for i, r in enumerate(rows):
        f = response_flaw(r.get("raw", ""), r.get("completion", ""), tasks_by_id[r["task_id"]])
        if f:
            flaws[f] += 1
        else:
            clean.append((i, r))
    n_cut = math.floor(drop_shortest * len(clean))
    cut = {i for i, _ in sorted(clean, key=lambda x: (sample_length(x[1]), x[0]))[:n_cut]}
    kept = [r for i, r in clean if i not in cut]
    lengths = sorted(sample_length(r) for r in kept)
    return kept, {"sampled": len(rows), **{f"dropped_{f}": flaws[f] for f in FLAWS},
                  "dropped_shortest": n_cut, "drop_shortest_share": drop_shortest, "kept": len(kept),
                  "min_kept_length": lengths[0] if lengths else None,
                  "extraction_counts": dict(Counter(r.get("extraction") for r in kept))}


def verifier_filter(rows: list[dict], tasks_by_id: dict) -> tuple[list[dict], dict]:
    """The verifier-aware arm: samples that passed their prompt's tests (never an empty or stub
    response). Returns (kept rows, counts with the acceptance rate over all samples)."""
    missing = [r["task_id"] for r in rows if "passed" not in r]
    if missing:
        raise InputError(f"the verifier arm needs scored samples; {len(missing)} are not scored, e.g. {missing[:3]}")
    kept = [r for r in rows if r["passed"] is True and
            response_flaw(r.get("raw", ""), r.get("completion", ""), tasks_by_id[r["task_id"]]) is None]
    return kept, {"sampled": len(rows), "kept": len(kept),
                  "acceptance_rate": (len(kept) / len(rows)) if rows else None,
                  "prompts_with_a_kept_sample": len({r["task_id"] for r in kept}),
                  "prompts": len({r["task_id"] for r in rows})}


def records(rows: list[dict], tasks_by_id: dict, protocol, arm: str) -> list[dict]:
    """Conversation records of ``arm``: the protocol's messages for the task, then the raw sample
    as the assistant turn (prefixed by the protocol's pre-filled text)."""
    out = []
    for r in rows:
        task = tasks_by_id[r["task_id"]]
        msgs = protocol.messages(task) + [{"role": "assistant", "content": protocol.prefill + r["raw"]}]
        out.append({"messages": msgs, "arm": arm, "task_id": r["task_id"], "sample_index": r.get("sample_index", 0)})
    return out


def anchor_records(tasks: list[dict], protocol) -> list[dict]:
    """Anchor data for the declared mix: each pool task's own verified reference as the answer
    (prompt as the protocol renders it, assistant = the reference in a python fence)."""
    out = []
    for t in tasks:
        ref = t["prompt"] + t["canonical_solution"]
        answer = protocol.prefill + ("" if protocol.prefill else "```python\n") + ref.strip("\n") + "\n```"
        out.append({"messages": protocol.messages(t) + [{"role": "assistant", "content": answer}],
                    "arm": "anchor", "task_id": t["task_id"], "sample_index": -1})
    return out


def mix(recs: list[dict], anchors: list[dict], ratio: float, seed: int) -> tuple[list[dict], dict]:
    """``recs`` plus anchors making up ``ratio`` of the final set (rounded; at most every anchor),
    chosen by a seeded hash order and placed after the SSD records. ``ratio`` 0 adds none."""
    if not 0 <= ratio < 1:
        raise InputError(f"--mix-ratio must be in [0, 1), got {ratio}")
    want = round(ratio / (1 - ratio) * len(recs)) if ratio else 0
    if want > len(anchors):
        raise InputError(f"--mix-ratio {ratio} needs {want} anchor records, the pool has {len(anchors)}")
    order = sorted(anchors, key=lambda a: _hash(f"{seed}:{a['task_id']}"))
    chosen = order[:want]
    total = len(recs) + len(chosen)
    return list(recs) + chosen, {"mix_ratio_declared": ratio, "anchors": len(chosen), "ssd_records": len(recs),
                                 "mix_ratio_actual": (len(chosen) / total) if total else 0.0}


def _hash(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def split_pool(problems: list[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Deterministic train/validation split of pool problems by a seeded hash of their id; the
    validation part (``val_fraction``, rounded, at least 1 when the fraction is > 0 and there are
    >= 2 problems) tunes T_eval and is never trained on."""
    if not 0 <= val_fraction < 1:
        raise InputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = sorted(problems, key=lambda p: _hash(f"{seed}:{p['id']}"))
    n_val = round(val_fraction * len(order))
    if val_fraction > 0 and n_val == 0 and len(order) >= 2:
        n_val = 1
    val_ids = {p["id"] for p in order[:n_val]}
    return [p for p in problems if p["id"] not in val_ids], [p for p in problems if p["id"] in val_ids]


def pool_problem(rec: dict) -> dict:
    """A verified pool record (common.mining.verify_problems) as a problems-file row."""
    p = rec["problem"]
    return {"id": rec["problem_id"], "entry_point": p["entry_point"], "signature": p["signature"],
            "docstring": p.get("docstring", ""), "reference": p["reference"], "tests": p["tests"],
            "source": "written by the model (recipe/ssd.py pool stage)"}


def fresh_only(problems: list[dict], earlier: list[dict]) -> tuple[list[dict], int]:
    """Round 2's fresh pool: problems whose id and normalised reference hash differ from every
    earlier-round problem. Returns (fresh problems, number dropped)."""
    from common.pycode import code_hash
    ids = {p["id"] for p in earlier}
    hashes = {code_hash(p["reference"]) for p in earlier}
    fresh = [p for p in problems if p["id"] not in ids and code_hash(p["reference"]) not in hashes]
    return fresh, len(problems) - len(fresh)
