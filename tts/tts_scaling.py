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

CODE_BENCHES = ("humaneval", "humaneval_plus", "humaneval_plus_base", "mbpp", "mbpp_sanitized")


def build_parser() -> argparse.ArgumentParser:
    from common.prompts import PROTOCOLS
    from common.tts_run import add_code_tts_args
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
    add_code_tts_args(p, n=16)
    return p


def parse_ns(text: str | None, n: int) -> list[int]:
    from common.cli import comma_list
    from common.results import InputError
    if text is None:
        return sorted({1, n} | {2 ** i for i in range(1, 12) if 2 ** i <= n})
    ns = comma_list(text, "--ns", int)
    bad = [x for x in ns if x < 1 or x > n]
    if not ns or bad:
        raise InputError(f"--ns values must be in 1..--n-samples ({n}); got {bad or 'nothing'}")
    return ns


def parse_benches(text: str) -> list[str]:
    from common.results import InputError
    benches = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in benches if b not in CODE_BENCHES]
    if not benches or bad or len(set(benches)) != len(benches):
        raise InputError(f"--benches: unknown or repeated {bad or benches}; choose from {', '.join(CODE_BENCHES)}")
    return benches


def plus_seed(root, benches: list[str], greedy_run: str | None) -> dict:
    """Where a HumanEval+ run takes its generations from: this run's HumanEval samples, greedy
    answers (or --greedy-run's) and model tests (same prompts; only the scoring differs)."""
    from pathlib import Path
    he = root / "humaneval" if "humaneval" in benches else None
    return {"sampled": he and he / "sampled",
            "greedy": Path(greedy_run) if greedy_run else he and he / "greedy",
            "model_tests": he and he / "model_tests.jsonl"}


def print_curve(bench: str, n: int, m: dict, curve: dict) -> None:
    from common.tts_summary import format_table
    print(f"\n{bench} · n={n} · {m['n_tasks']} tasks\n{format_table(m)}")
    if m.get("ssd_precondition"):
        print("  " + m["ssd_precondition"]["line"])
    print("  curve (n: pass@1 / " + " / ".join(m["selectors"]) + " / oracle_pass@n):")
    for n_, e in curve.items():
        sel = " / ".join(f"{100 * e['selectors'][s]['mean']:.1f}" for s in m["selectors"] if s in e["selectors"])
        print(f"    {n_:>3}: {100 * e['pass@1']:.1f} / {sel} / {100 * e['oracle_pass@n']:.1f}")


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.results import InputError, results_root, slug, write_json_atomic
    from common.runtime import ModelConfig
    from common.tts_code import CodeTTSRun, execute_code, sample_code, select_code, write_code_result
    from common.tts_run import code_tts_from_args, load_greedy_run
    from common.tts_summary import selection_curve

    strategy, params, settings = code_tts_from_args(args)
    ns = parse_ns(args.ns, params.n)
    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    benches = parse_benches(args.benches)
    data = {b: (args.plus_data if b.startswith("humaneval_plus") else args.mbpp_data if b.startswith("mbpp") else None)
            for b in benches}
    loaded = {b: load_tasks(b, limit=args.limit, path=data[b]) for b in benches}  # fail early on bad data
    model = EvalModel.load(ModelConfig.from_args(args))
    name = args.run_name or "_".join(
        ["tts-scaling", "-".join(benches), slug(args.model)] + (["adapter-" + slug(args.adapter)] if args.adapter else [])
        + [slug(strategy.protocol_name), f"n{params.n}-t{params.temperature}-p{params.top_p}-s{params.seed}"]
        + ([f"limit{args.limit}"] if args.limit else []))
    root = Path(args.out_dir or results_root()) / name
    invocation = Invocation(__file__, argv, vars(args))
    out = {}
    for b in sorted(benches, key=lambda x: x.startswith("humaneval_plus")):  # humaneval first
        tasks, dataset = loaded[b]
        run = CodeTTSRun(EvalJob(root / b, tasks, dataset, strategy.protocol, params, model, invocation,
                                 RunOptions.from_args(args)), strategy, settings)
        if b.startswith("humaneval_plus"):  # HumanEval verdicts are not HumanEval+ verdicts: re-score its samples
            if args.greedy_run:
                load_greedy_run(args.greedy_run, [t["task_id"] for t in tasks], model_info=model.info,
                                dataset={"name": "humaneval", "sha256": None})
            run = dataclasses.replace(run, settings=dataclasses.replace(settings, greedy_run=None),
                                      seed_from=plus_seed(root, benches, args.greedy_run))
        samples = sample_code(run)                        # 1. N samples per task, greedy, model tests
        execution = execute_code(run, samples)            # 2. each sample run on the tasks' inputs
        selection = select_code(run, samples, execution)  # 3. every selector with all N samples,
        m = write_code_result(run, samples, execution, selection)["metrics"]
        curve = selection_curve(execution.cands, ns, selectors=list(m["selectors"]), repeats=args.repeats,
                                seed=args.seed)           # and with n of them, for each n in --ns
        out[b] = {"run_dir": str(root / b), "n_max": params.n, "curve": curve, "pass_at_k": m["pass_at_k"],
                  "table": m["table"], "greedy": m["greedy"], "ssd_line": (m.get("ssd_precondition") or {}).get("line")}
        print_curve(b, params.n, m, curve)
    result = {**invocation.provenance(), "kind": "tts_scaling", "model": model.info,
              "protocol": strategy.protocol_name, "sampling": params.to_dict(), "ns": ns, "repeats": args.repeats,
              "primary_selector": settings.primary, "benches": out}
    write_json_atomic(root / "result.json", result)
    print(f"  results: {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
