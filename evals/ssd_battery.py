"""SSD anti-collapse battery (seed 003; issue 17): base and each SSD arm sampled on the frozen,
declared probe set (data/ssd_probes.jsonl: code prompts and safety prompts), every probe's value
for both, and each probe's alert under the pre-declared thresholds (data/ssd_thresholds.json →
battery): self-BLEU and within-sample n-gram repetition (+10% relative), median length (±25%),
pass@k falling while pass@1 rises (from the held-out evaluation), comment/docstring/prose style
drift, refusal-rate drift and unsafe-completion rise on the safety probes.

Not a PAPER.md claim: seed 003's battery for recipe/ssd.py's arms.

Full command (embedded 0.5B model; the held-out deltas for the diversity probe come from
evals/ssd_eval.py):
    python evals/ssd_battery.py --ssd-run results/ssd_qwen05b --eval-result results/ssd_eval_qwen05b/result.json \\
        --run-name ssd_battery_qwen05b
Quick command (SmolLM2, the probe set's sampling with 48 tokens):
    python evals/ssd_battery.py --ssd-run results/ssd_quick --model smollm2-135m-instruct --max-new-tokens 48 \\
        --run-name ssd_battery_quick

Writes results/<run>/<model>.jsonl (one row per probe with its samples; resumable, per-sample
seeds) and result.json: the thresholds file's sha256, the probe set's sha256, every model's probe
values, and per arm (``arms.minimal`` / ``arms.verifier``, never merged) every probe with base
value, arm value, change, tolerance and alert, the list of alerts, unmeasured probes and
``all_within``; timings sum the probe generation over every invocation (invocations.jsonl). A
probe that could not be measured (e.g. no --eval-result) is never "within".
Expect ~20 probes x 4 samples x <= 256 tokens ≈ 2-4 min per model for the 0.5B model on 2 cores.

Deviations from seed 003: the probe set is ours (12 original code prompts in the evaluation's
he-chat shape, 8 harmful-request prompts with declared unsafe markers); refusal is a regular
expression and unsafe completion a marker match, both crude and both declared before training.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.prompts import PROTOCOLS
    from common.ssd import add_arm_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    g = p.add_argument_group("battery")
    add_arm_args(g)
    g.add_argument("--eval-result", default=None,
                   help="evals/ssd_eval.py result.json (pass@1 and pass@k deltas for the diversity probe)")
    g.add_argument("--probes", default=None, help="probe set (default: the thresholds file's probe_set)")
    g.add_argument("--protocol", default="he-chat", choices=sorted(PROTOCOLS),
                   help="how code probes are rendered (default he-chat, the evaluation's)")
    g.add_argument("--max-new-tokens", type=int, default=None, help="tokens per sample (default: the thresholds file's)")
    add_model_args(p, adapter=False)
    add_run_args(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import time
    t0 = time.time()
    from common.compare import ModelSlot
    from common.evaluation import Invocation
    from common.models import resolve_model
    from common.results import REPO_ROOT, file_sha256, results_root, slug, write_json_atomic
    from common.rundir import open_run_dir, record_invocation
    from common.runtime import ModelConfig
    from common.ssd import arm_adapters, load_json_file, load_thresholds
    from common.ssd_battery import load_probes
    evaluate = arm_adapters(args.ssd_run, args.arms)
    th = load_thresholds(args.thresholds)
    bt = th["battery"]
    probes_path = Path(args.probes or (REPO_ROOT / bt["probe_set"]))
    probes = load_probes(probes_path)
    params = probe_params(bt["probe_sampling"], args.max_new_tokens)
    slot = ModelSlot(resolve_model(args.model), ModelConfig.from_args(args))
    run_dir = Path(args.out_dir or results_root()) / (args.run_name or f"ssd_battery_{slug(args.model)}")
    open_run_dir(run_dir, {"models": {k: slot.info(v) for k, v in evaluate.items()}, "sampling": params.to_dict(),
                           "probes_sha256": file_sha256(probes_path), "protocol": args.protocol}, args.overwrite)
    if args.overwrite:  # under the run's lock: the probe samples go too
        for label in evaluate:
            (run_dir / f"{label}.jsonl").unlink(missing_ok=True)
    done_before, t_gen = probe_rows_done(run_dir, evaluate), time.time()
    values = {label: sample_stage(run_dir, slot, label, adapter, probes, params, args)
              for label, adapter in evaluate.items()}
    slot.release()
    generated = probe_rows_done(run_dir, evaluate) - done_before
    timed = record_invocation(run_dir, time.time() - t_gen, generated, len(probes) * len(evaluate))
    ev = load_json_file(args.eval_result, "--eval-result") if args.eval_result else None
    result = {**Invocation(__file__, argv, vars(args)).provenance(),
              "thresholds": {"path": th["_path"], "sha256": th["_sha256"], "battery": bt},
              "probe_set": {"path": str(probes_path), "sha256": file_sha256(probes_path),
                            "code": sum(p["kind"] == "code" for p in probes),
                            "safety": sum(p["kind"] == "safety" for p in probes)},
              "sampling": params.to_dict(), "protocol": args.protocol,
              "eval_result": args.eval_result, "values": values,
              "arms": alert_stage(values, evaluate, ev, bt),
              "timings": {"total_s_this_invocation": round(time.time() - t0, 1), **timed}}
    write_json_atomic(run_dir / "result.json", result)
    for arm, a in result["arms"].items():
        print(f"{arm}: alerts {a['alerts'] or 'none'}; unmeasured {a['unmeasured'] or 'none'}; "
              f"all within: {a['all_within']}")
    print(f"results: {run_dir}")
    return 0


def probe_rows_done(run_dir: Path, models) -> int:
    """Probe rows (one per probe and model) already in the run's <model>.jsonl files."""
    from common.results import read_jsonl
    return sum(len(read_jsonl(p)) for p in (run_dir / f"{m}.jsonl" for m in models) if p.is_file())


def probe_params(ps: dict, max_new_tokens: int | None):
    from common.sampling import SamplingParams
    return SamplingParams(n=ps["n"], temperature=ps["temperature"], top_p=ps["top_p"], top_k=ps.get("top_k", 0),
                          max_new_tokens=max_new_tokens or ps["max_new_tokens"], seed=ps["seed"])


def probe_items(probes: list[dict], protocol) -> list[dict]:
    """Generation items: code probes as the protocol renders a task, safety probes as a user turn
    under the protocol's system prompt."""
    items = []
    for p in probes:
        if p["kind"] == "code":
            msgs = protocol.messages({"prompt": p["prompt"]})
        else:
            msgs = ([{"role": "system", "content": protocol.system}] if protocol.system else []) + \
                   [{"role": "user", "content": p["prompt"]}]
        items.append({"key": p["id"], "kind": p["kind"], "messages": msgs})
    return items


def sample_stage(run_dir: Path, slot, label: str, adapter, probes: list[dict], params, args) -> dict:
    """One model's samples on the probe set (<label>.jsonl, resumable) and its probe values."""
    from common.mining import generate_into
    from common.prompts import get_protocol
    from common.ssd_battery import model_probe_values
    proto = get_protocol(args.protocol)
    if proto.prefill:
        from common.results import InputError
        raise InputError(f"--protocol {args.protocol} pre-fills the answer; probe with he-chat or raw-free chat protocols")
    rows = generate_into(run_dir / f"{label}.jsonl", lambda: slot.get(adapter), probe_items(probes, proto), params,
                         desc=f"probes ({label})", progress=not args.quiet)
    return model_probe_values({r["key"]: [s["text"] for s in r["samples"]] for r in rows}, probes)


def alert_stage(values: dict, evaluate: dict, ev: dict | None, bt: dict) -> dict:
    """Every arm against the base; the diversity probe from the held-out evaluation when given."""
    from common.ssd_battery import battery_alerts, diversity_alert
    from common.ssd_eval import deltas_for_battery
    k = bt["diversity_at_k"]["k"]
    out = {}
    for arm in (a for a in evaluate if a != "base"):
        div = None
        if ev and arm in ev.get("arms", {}):
            kk = min(k, ev.get("n_samples", k))
            d1, dk = deltas_for_battery(ev["arms"][arm], kk)
            div = diversity_alert(d1, dk, kk)
        out[arm] = battery_alerts(values["base"], values[arm], bt, div)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
