"""The sweeps' shared path (experiments/pair_count_sweep.py, experiments/seed_sweep.py): several
adapters trained from one pairs file, the base model evaluated once, each adapter compared with
it on the same tasks. A sweep script decides its arms (which pairs, which training settings);
:func:`run_sweep` trains, evaluates and tabulates them."""
from __future__ import annotations

import json
import time

from common.results import InputError


def parse_int_list(text: str, flag: str, minimum: int = 0) -> list[int]:
    """``--counts 10,21,40``: distinct integers >= ``minimum``, else an InputError naming ``flag``."""
    try:
        vals = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not vals or any(v < minimum for v in vals):
        raise InputError(f"{flag} needs integers >= {minimum}, got {text!r}")
    if len(set(vals)) != len(vals):
        raise InputError(f"{flag} repeats a value: {text!r}")
    return vals


def run_sweep(setup, kind: str, arms: list[tuple[str, list[dict], object]], pairs_info: dict,
              config_extra: dict) -> dict:
    """Train one adapter per arm ``(name, pairs, TrainConfig)`` (each skipped when already
    trained), evaluate the base model once and every adapter on the same tasks, and compare
    each with the base (paired). results/<run>/<name>/ holds each arm's pairs and adapter;
    ``setup`` is a common.compare.TrainEvalSetup."""
    from common.compare import ModelSlot, evaluate_and_compare, summarize_training
    from common.lora import train_adapter
    from common.models import resolve_model
    from common.pairs import pairs_provenance
    from common.results import slug, write_json_atomic, write_jsonl_atomic
    from common.rundir import prepare_run_dir
    resolved = resolve_model(setup.model.model)
    run_dir = setup.run_dir(f"{kind}_{slug(setup.model.model)}_{pairs_info['sha256'][:8]}")
    parent = {k: pairs_info.get(k) for k in ("path", "sha256", "count")}
    config = {"sweep": kind, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256}, "pairs": parent,
              "arms": [{"name": n, "n_pairs": len(ps), "training": c.to_dict()} for n, ps, c in arms],
              "eval": setup.ev.spec.to_config(), **config_extra}
    prepare_run_dir(run_dir, config, setup.overwrite)
    t0 = time.time()
    trainings, adapters = {}, {}
    for name, ps, cfg in arms:
        adir = run_dir / name
        write_jsonl_atomic(adir / "pairs.jsonl", ps)
        info = {**pairs_provenance(adir / "pairs.jsonl", ps), "parent": parent}
        tres = train_adapter(resolved, ps, info, cfg, adir / "adapter", setup.ev.invocation, setup.ev.options,
                             extra={"sweep": kind, "arm": name})
        trainings[name] = summarize_training(tres)
        adapters[name] = str(adir / "adapter")
    ev = evaluate_and_compare(ModelSlot(resolved, setup.model), adapters, run_dir / "eval", setup.ev)
    table = {proto: [{"arm": n, "pass@1": entry[n]["pass@1"]["mean"], "delta": entry[n]["comparison"]["delta"],
                      "ci": entry[n]["comparison"]["ci"], "mcnemar_p": entry[n]["comparison"]["mcnemar_p"],
                      "base_pass@1": entry["base"]["pass@1"]["mean"]} for n, _, _ in arms]
             for proto, entry in ev.items()}
    result = {**setup.ev.invocation.provenance(), "sweep": kind, "config": json.loads(json.dumps(config)),
              "model": resolved.provenance(), "pairs": pairs_info, "training": trainings, "evaluation": ev,
              "table": table, "timings": {"total_s_this_invocation": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def print_table(res: dict) -> None:
    print(f"\n{res['sweep']} · {res['model']['ref']} · {res['run_dir']}")
    for proto, rows in res["table"].items():
        print(f"  [{proto}] base pass@1 {100 * rows[0]['base_pass@1']:.1f}%" if rows else f"  [{proto}]")
        for r in rows:
            p = r["mcnemar_p"]
            print(f"    {r['arm']:>12}: {100 * r['pass@1']:.1f}%  delta {100 * r['delta']:+.1f} pp "
                  f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]" + (f"  p={p:.3g}" if p is not None else ""))
