"""Test-time scaling: pass@k, oracle_pass@n and every deployable selector as n grows, per benchmark.

Paper rows: PAPER.md §1 claims 7 and 9 (pass@k / "best-of-N" curves — ORACLE numbers, §4
defect 5); seed 000 §8.8 (test-time compute scaling: generate many → execute → filter →
rerank, with diminishing returns); ANCHORS.md "Test-time selection" (voting plateaus while
oracle coverage keeps growing).

What it does: for each benchmark in --benches, one TTS run of N = --n-samples samples per task
(exactly as tts/tts_humaneval.py: greedy beside it, model-written tests, one sandbox run per
sample), then the curve over n in --ns: pass@1 and oracle_pass@n from the unbiased estimator on
all N samples, and each selector's expected pass@1 with n candidates, averaged over --repeats
random n-subsets of the N samples per task (seeded). HumanEval+ (--benches humaneval_plus,
needs --plus-data) re-scores the HumanEval samples on the extra tests instead of generating
again (same prompts).

Full command (HumanEval and HumanEval+, N=16, 0.5B model):
    python tts/tts_scaling.py --benches humaneval,humaneval_plus --plus-data HumanEvalPlus.jsonl \\
        --n-samples 16 --ns 1,2,4,8,16
Quick command (2 tasks, about 3 minutes on 2 CPU cores):
    python tts/tts_scaling.py --model smollm2-135m-instruct --limit 2 --n-samples 3 --ns 1,2,3 \\
        --max-new-tokens 64 --test-samples 1 --test-max-new-tokens 48

Writes results/<run>/result.json (kind "tts_scaling": per benchmark the curve, the full-N
table and the SSD line) and one TTS run per benchmark in results/<run>/<bench>/ (kind
"tts_code"). Rerunning resumes. Expected runtime on 2 CPU cores with the 0.5B model: about
2–2.5 h for N=16 on all 164 tasks (generation dominates; HumanEval+ adds only sandbox time).

Deviations from the paper:
1. Curves are estimated from one draw of N per task (subsampling for selectors, the unbiased
   estimator for pass@k/oracle), not from the first k samples.
2. N=16 by default on the 0.5B model (the paper's AIME curve goes to 64 on Qwen3-8B base;
   tts/tts_aime.py covers math).
"""
from __future__ import annotations

import argparse
import sys

CODE_BENCHES = ("humaneval", "humaneval_plus", "humaneval_plus_base", "mbpp", "mbpp_sanitized")


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args, add_sampling_args
    from common.prompts import PROTOCOLS
    from common.strategies import add_strategy_args
    from common.tts import add_tts_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--benches", default="humaneval",
                   help=f"comma-separated code benchmarks ({', '.join(CODE_BENCHES)}); humaneval_plus reuses "
                        f"the humaneval samples when both are listed (default humaneval)")
    p.add_argument("--plus-data", default=None,
                   help="HumanEval+ data file (evalplus release JSONL) for humaneval_plus/humaneval_plus_base")
    p.add_argument("--mbpp-data", default=None, help="MBPP data file for mbpp/mbpp_sanitized")
    p.add_argument("--ns", default=None,
                   help="comma-separated numbers of candidates for the curve, each <= --n-samples "
                        "(default: 1, 2, 4, 8, ... up to --n-samples, and --n-samples)")
    p.add_argument("--repeats", type=int, default=20,
                   help="random subsets per task and n when n < N, for the selector curve (default 20)")
    p.add_argument("--protocol", default="qwen-official", choices=sorted(PROTOCOLS),
                   help="prompt format and post-processing (default qwen-official)")
    add_strategy_args(p)
    add_tts_args(p)
    add_model_args(p)
    add_sampling_args(p, n=16, temperature=0.8, top_p=0.95)
    add_run_args(p)
    return p


def parse_ns(text: str | None, n: int) -> list[int]:
    from common.results import InputError
    if text is None:
        return sorted({1, n} | {2 ** i for i in range(1, 12) if 2 ** i <= n})
    try:
        ns = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"--ns must be comma-separated integers, got {text!r}") from None
    bad = [x for x in ns if x < 1 or x > n]
    if not ns or bad:
        raise InputError(f"--ns values must be in 1..--n-samples ({n}); got {bad or 'nothing'}")
    return ns


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.models import check_adapter_dir, resolve_model
    from common.results import InputError, provenance, results_root, write_json_atomic
    from common.runtime import lazy_llm, model_info
    from common.tts import (code_settings, format_table, load_greedy_run, run_code_tts, selection_curve,
                            slug)

    strategy, params, testgen, primary = code_settings(args)
    ns = parse_ns(args.ns, params.n)
    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    benches = [b.strip() for b in args.benches.split(",") if b.strip()]
    bad = [b for b in benches if b not in CODE_BENCHES]
    if not benches or bad or len(set(benches)) != len(benches):
        raise InputError(f"--benches: unknown or repeated {bad or benches}; choose from {', '.join(CODE_BENCHES)}")
    if args.adapter:
        check_adapter_dir(args.adapter)
    data = {b: (args.plus_data if b.startswith("humaneval_plus") else args.mbpp_data if b.startswith("mbpp") else None)
            for b in benches}
    loaded = {b: load_tasks(b, limit=args.limit, path=data[b]) for b in benches}  # fail early on bad data
    resolved = resolve_model(args.model)
    info = model_info(resolved, args)
    get_llm = lazy_llm(resolved, args)
    argv_ = argv if argv is not None else sys.argv[1:]
    name = args.run_name or "_".join(
        ["tts-scaling", "-".join(benches), slug(args.model)] + (["adapter-" + slug(args.adapter)] if args.adapter else [])
        + [slug(strategy.protocol_name), f"n{params.n}-t{params.temperature}-p{params.top_p}-s{params.seed}"]
        + ([f"limit{args.limit}"] if args.limit else []))
    root = Path(args.out_dir or results_root()) / name
    out = {}
    for b in sorted(benches, key=lambda x: x.startswith("humaneval_plus")):  # humaneval first
        tasks, dataset = loaded[b]
        seed_from, greedy_run = None, args.greedy_run
        if b.startswith("humaneval_plus"):
            he = root / "humaneval"
            if args.greedy_run:  # HumanEval verdicts are not HumanEval+ verdicts: re-score its samples
                load_greedy_run(args.greedy_run, [t["task_id"] for t in tasks], model_info=info,
                                dataset={"name": "humaneval", "sha256": None})
            seed_from = {"sampled": he / "sampled" if "humaneval" in benches else None,
                         "greedy": Path(args.greedy_run) if args.greedy_run else
                         (he / "greedy" if "humaneval" in benches else None),
                         "model_tests": he / "model_tests.jsonl" if "humaneval" in benches else None}
            greedy_run = None
        res, cands = run_code_tts(script=__file__, argv=argv_, args=vars(args), run_dir=root / b, tasks=tasks,
                                  dataset=dataset, strategy=strategy, params=params, model_info=info,
                                  get_llm=get_llm, greedy_run=greedy_run,
                                  run_greedy=not args.no_greedy, testgen=testgen,
                                  behaviour_inputs=args.behaviour_inputs, primary=primary, ssd_k=args.ssd_k,
                                  ssd_threshold_pp=args.ssd_threshold_pp, workers=args.workers,
                                  timeout=args.timeout, overwrite=args.overwrite, progress=not args.quiet,
                                  seed_from=seed_from)
        m = res["metrics"]
        curve = selection_curve(cands, ns, selectors=list(m["selectors"]), repeats=args.repeats, seed=args.seed)
        out[b] = {"run_dir": str(root / b), "n_max": params.n, "curve": curve, "pass_at_k": m["pass_at_k"],
                  "table": m["table"], "greedy": m["greedy"], "ssd_line": (m.get("ssd_precondition") or {}).get("line")}
        print(f"\n{b} · n={params.n} · {m['n_tasks']} tasks\n{format_table(m)}")
        if out[b]["ssd_line"]:
            print("  " + out[b]["ssd_line"])
        print("  curve (n: pass@1 / " + " / ".join(m["selectors"]) + " / oracle_pass@n):")
        for n_, e in curve.items():
            sel = " / ".join(f"{100 * e['selectors'][s]['mean']:.1f}" for s in m["selectors"] if s in e["selectors"])
            print(f"    {n_:>3}: {100 * e['pass@1']:.1f} / {sel} / {100 * e['oracle_pass@n']:.1f}")
    result = {**provenance(__file__, argv_, vars(args)), "kind": "tts_scaling", "model": info,
              "protocol": strategy.protocol_name, "sampling": params.to_dict(), "ns": ns, "repeats": args.repeats,
              "primary_selector": primary, "benches": out}
    write_json_atomic(root / "result.json", result)
    print(f"  results: {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
