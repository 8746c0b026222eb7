"""n-gram decontamination against a benchmark: does model-written text share 13-grams of
identifiers, keywords and numbers with the benchmark's prompts and canonical solutions.

:func:`benchmark_index` indexes a benchmark once (:func:`humaneval_index` for the offline
HumanEval); :func:`decontamination_report` flags the items that share n-grams with it.
Punctuation and layout are ignored (:func:`decon_tokens`).
"""
from __future__ import annotations

import re

DECON_NGRAM = 13
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def decon_tokens(text: str) -> list[str]:
    """Lower-cased identifiers, keywords and numbers; punctuation and layout are ignored."""
    return [t.lower() for t in _WORD_RE.findall(text)]


def ngrams(tokens: list[str], n: int = DECON_NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def benchmark_index(tasks: list[dict], n: int = DECON_NGRAM,
                    fields: tuple[str, ...] = ("prompt", "canonical_solution")) -> dict:
    """n-gram -> set of task ids, over each task's prompt + canonical solution."""
    index: dict[tuple, set] = {}
    for t in tasks:
        text = "\n".join(str(t.get(f) or "") for f in fields)
        for g in ngrams(decon_tokens(text), n):
            index.setdefault(g, set()).add(t["task_id"])
    return {"n": n, "fields": list(fields), "index": index, "n_tasks": len(tasks)}


def overlap(text: str, bindex: dict) -> dict:
    """Shared n-grams of ``text`` with the benchmark: count, fraction of the text's n-grams that
    occur anywhere in the benchmark, and the task sharing the most."""
    grams = ngrams(decon_tokens(text), bindex["n"])
    if not grams:
        return {"shared": 0, "fraction": 0.0, "task_id": None, "n_ngrams": 0}
    per_task: dict[str, int] = {}
    shared = 0
    for g in grams:
        tids = bindex["index"].get(g)
        if tids:
            shared += 1
            for t in tids:
                per_task[t] = per_task.get(t, 0) + 1
    top = max(sorted(per_task), key=per_task.get) if per_task else None
    return {"shared": shared, "fraction": shared / len(grams), "task_id": top, "n_ngrams": len(grams)}


def decontamination_report(items: dict[str, str], bindex: dict, min_shared: int = 1,
                           max_fraction: float = 0.0) -> dict:
    """Flag items sharing >= ``min_shared`` n-grams with the benchmark AND whose overlap fraction
    exceeds ``max_fraction`` (defaults: any shared 13-gram flags). Returns counts, the flagged
    ids with their closest task, and the largest overlap fraction seen."""
    flagged, worst = [], 0.0
    for iid, text in items.items():
        o = overlap(text, bindex)
        worst = max(worst, o["fraction"])
        if o["shared"] >= min_shared and o["fraction"] > max_fraction:
            flagged.append({"id": iid, "task_id": o["task_id"], "shared": o["shared"],
                            "fraction": round(o["fraction"], 4)})
    return {"ngram": bindex["n"], "benchmark_fields": bindex["fields"], "min_shared": min_shared,
            "max_fraction": max_fraction, "n_checked": len(items), "n_flagged": len(flagged),
            "flagged_ids": [f["id"] for f in flagged], "flagged": flagged,
            "max_overlap_fraction": round(worst, 4)}


def humaneval_index(n: int = DECON_NGRAM) -> dict:
    """The decontamination index over the offline HumanEval prompts + canonical solutions."""
    from common.benchmarks import load_humaneval
    return benchmark_index(load_humaneval(), n)
