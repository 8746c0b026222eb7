"""Resumable generation: the one loop behind every script that samples a model into a JSONL file.

:func:`generate_missing` looks at what a :class:`~common.results.JsonlLog` already holds, asks
the model only for the items still missing, and appends each item's rows as soon as its samples
exist, so an interrupted run loses at most the items in flight. Each item's samples are seeded by
the item's position in the full list (``seed_keys``), so a resumed call draws the same seeds as
an uninterrupted one.
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from common.results import InputError, JsonlLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationPlan:
    """What one resumable generation does with each item.

    ``field``: the key shared by an item and its rows (``task_id``, ``key``; a tuple of keys,
    e.g. ``("task_id", "sample_index")``, when one field does not identify an item); ``prompt(item,
    llm)``: the model input; ``rows(item, completions)``: the JSONL rows of one finished item;
    ``rows_per_item``: how many rows a finished item has (``params.n`` for one row per sample, 1
    for one row holding all samples); ``desc``: the progress bar's label."""
    field: str | tuple
    prompt: Callable
    rows: Callable
    rows_per_item: int
    desc: str = "generate"

    def key(self, d: dict):
        """The key of an item or row: ``d[field]``, or the tuple of values of a tuple ``field``."""
        return tuple(d[f] for f in self.field) if isinstance(self.field, tuple) else d[self.field]


@dataclass
class Generated:
    """How a :func:`generate_missing` call went: items generated now, seconds, the model used
    (None when nothing was missing, so a resumed run need not load one)."""
    items: int
    seconds: float
    llm: object = None


def generate_missing(log_: JsonlLog, items: Sequence[dict], get_llm, params, plan: GenerationPlan,
                     progress: bool = True) -> Generated:
    """Generate the items of ``items`` missing from ``log_`` and append their rows.

    An item with some rows but fewer than ``plan.rows_per_item`` cannot come from an interrupted
    run (an item is written whole), only from changed settings: InputError."""
    have = collections.Counter(plan.key(r) for r in log_.rows)
    todo = [it for it in items if have[plan.key(it)] < plan.rows_per_item]
    partial = [plan.key(it) for it in todo if have[plan.key(it)]]
    if partial:
        raise InputError(f"{log_.path} has an incomplete set of samples for {partial[:3]}; use --overwrite")
    if not todo:
        return Generated(0, 0.0)
    llm = get_llm()
    prompts = [plan.prompt(it, llm) for it in todo]

    def on_done(i, completions):
        for row in plan.rows(todo[i], completions):
            log_.append(row)

    log.info("%s: %d items x %d samples (%d already done)", plan.desc, len(todo), params.n, len(items) - len(todo))
    position = {plan.key(it): i for i, it in enumerate(items)}
    t0 = time.time()
    llm.generate(prompts, params, on_done=on_done, progress=progress, desc=plan.desc,
                 seed_keys=[position[plan.key(it)] for it in todo])
    return Generated(len(todo), time.time() - t0, llm)


def completion_fields(c) -> dict:
    """What every samples file records of one completion besides its text."""
    return {"finish_reason": c.finish_reason, "n_tokens": c.n_tokens}


def by_field(rows: Sequence[dict], field: str) -> dict[str, list[dict]]:
    """Rows grouped by ``field``, in file order."""
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        out[r[field]].append(r)
    return out


def samples_in_order(rows: Sequence[dict], items: Sequence[dict], field: str = "task_id") -> list[dict]:
    """The rows of ``items`` only, ordered by item then ``sample_index``."""
    order = {it[field]: i for i, it in enumerate(items)}
    return sorted((r for r in rows if r[field] in order), key=lambda r: (order[r[field]], r.get("sample_index", 0)))

