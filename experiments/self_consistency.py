"""Self-consistency: how much of the oracle gap majority voting recovers, for answers and for code.

Paper rows: PAPER.md §1 claims 7–8 read the deployable way (majority vote instead of the
oracle, §4 defect 5); seed 000 §8.2 ("best-of-N with self-consistency (majority voting on
output)"); ANCHORS.md "Test-time selection" (self-consistency +17.9 points on GSM8K for
PaLM-540B; voting plateaus while oracle coverage grows).

What it does: for math (procedural, champ, champ_int offline; gsm8k, math500, aime) majority vote over the extracted final answers
(common.answers: equal values vote together, e.g. 0.5 and \\frac{1}{2}); for code (humaneval,
humaneval_plus, mbpp...) majority vote over execution behaviour (samples clustered by their
outputs on the prompt's example inputs, plus the model tests' inputs if --test-samples > 0).
Reports pass@1 (random, expected), majority (maj@n), greedy, oracle_pass@n, the recovered
share (maj − pass@1) / (oracle − pass@1), majority vs greedy with a paired interval and McNemar
p, and the maj@m curve for m = 1, 2, 4, ... ≤ n (random m-subsets of the n samples, seeded).
--from-run DIR analyses an existing TTS run (tts_humaneval.py, tts_math500.py, tts_aime.py,
this script) without generating anything.

Full commands:
    python experiments/self_consistency.py --bench procedural --n-samples 8
    python experiments/self_consistency.py --bench gsm8k --data-path gsm8k/test.jsonl --limit 100 --n-samples 10
    python experiments/self_consistency.py --from-run results/<a tts_humaneval run>
Quick command (fixture, about 3 minutes on 2 CPU cores):
    python experiments/self_consistency.py --bench gsm8k --data-path tests/fixtures/gsm8k.jsonl \\
        --model smollm2-135m-instruct --limit 2 --n-samples 3 --max-new-tokens 64

Writes results/<run>/result.json (kind "self_consistency") and, when it generates, the TTS run
it analyses in results/<run>/tts/. Expected runtime on 2 CPU cores, 0.5B model: GSM8K first
100 problems × 11 answers of ≤ 512 tokens ≈ 3–4 h; --from-run takes seconds.

Deviations: majority vote over code behaviour needs inputs; tasks without any parseable
example (13 of 164 HumanEval prompts) fall back to the highest mean log-probability (counted in
``how``). The paper reports no self-consistency numbers; this is the deployable counterpart of
its oracle numbers.
"""
from __future__ import annotations

import argparse

from common.results import InputError
from common.tts_math import MATH_BENCHES

MATH = tuple(MATH_BENCHES)


def build_parser() -> argparse.ArgumentParser:
    from common.prompts import PROTOCOLS
    from common.tts_math import MATH_FORMATS
    from common.tts_run import add_code_tts_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--bench", default="gsm8k",
                   help="math (answers): procedural, champ, champ_int (offline), gsm8k, math500, aime; or code "
                        "(behaviour): humaneval, humaneval_plus, mbpp, mbpp_sanitized (default gsm8k)")
    p.add_argument("--data-path", default=None,
                   help="local data file (all but humaneval, procedural and champ/champ_int need one)")
    p.add_argument("--from-run", default=None,
                   help="analyse this existing TTS run directory (its result.json) instead of generating")
    p.add_argument("--format", default="chat", choices=MATH_FORMATS,
                   help="math prompt format: chat template or raw text (default chat)")
    p.add_argument("--protocol", default="qwen-official", choices=sorted(PROTOCOLS),
                   help="code prompt protocol (default qwen-official)")
    p.add_argument("--repeats", type=int, default=20,
                   help="random subsets per task for the maj@m curve (default 20)")
    add_code_tts_args(p, n=10)
    p.set_defaults(test_samples=0, rerank="behaviour_majority")
    for a in p._actions:  # this script's default differs from the TTS scripts': say so in --help
        if a.dest == "test_samples":
            a.help = ("code only: model-written test generations per task whose inputs join the behaviour "
                      "inputs (default 0: the prompt's examples only)")
    return p


def analyse(result: dict, *, repeats: int = 20, seed: int = 0) -> dict:
    """Self-consistency numbers from a TTS result (kind tts_code or tts_math): pure."""
    from common.metrics import ks_for, paired_delta
    from common.selection import Candidates
    from common.tts_summary import gap_recovered, selection_curve
    kind = result.get("kind")
    if kind not in ("tts_code", "tts_math"):
        raise InputError(f"not a TTS result (kind {kind!r}); expected tts_code or tts_math")
    sel = "majority_vote" if kind == "tts_math" else "behaviour_majority"
    m = result["metrics"]
    if sel not in m["selectors"]:
        raise InputError(f"the run has no {sel} selection")
    per = result["per_task"]
    cands = [Candidates(t, v["passed"], v.get("mean_logprob") or [None] * len(v["passed"]),
                        [None] * len(v["passed"]),
                        signatures=[None if c is None else (c,) for c in v.get("cluster", [])])
             for t, v in per.items()]
    n = m["n_samples_per_task"]
    maj = m["selectors"][sel]
    p1 = m["random_expected"]["mean"]
    orc = m["oracle_pass@n"]["mean"]
    out = {"selector": sel, "n": n, "n_tasks": m["n_tasks"], "pass@1": m["random_expected"],
           "majority": {k: maj[k] for k in ("mean", "ci", "ci_method", "passed_tasks", "how") if k in maj},
           "oracle_pass@n": m["oracle_pass@n"], "greedy": m.get("greedy"),
           "recovered": gap_recovered(maj["mean"], p1, orc),
           "majority_vs_random": maj["vs_random"], "majority_vs_greedy": maj.get("vs_greedy")}
    if m.get("greedy"):
        g = {t: float(v["greedy"]) for t, v in per.items()}
        out["oracle_vs_greedy"] = paired_delta(g, {t: float(any(v["passed"])) for t, v in per.items()})
    curve = selection_curve(cands, ks_for(n), selectors=[sel], repeats=repeats, seed=seed)
    out["curve"] = {mm: {"n": mm, "pass@1": e["pass@1"], "majority": e["selectors"][sel],
                         "oracle_pass@n": e["oracle_pass@n"]} for mm, e in curve.items()}
    return out


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.results import InputError, provenance, results_root, slug, write_json_atomic
    from common.tts_run import read_tts_result
    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    if args.from_run:
        tts_res = read_tts_result(args.from_run, "--from-run")   # 1-3. a finished TTS run ...
        root = Path(args.out_dir or results_root()) / (args.run_name or f"self-consistency_from_{slug(args.from_run)}")
        bench = (tts_res.get("dataset") or {}).get("name") or tts_res.get("bench")
    else:
        bench = args.bench
        stem = f"n{args.n_samples}-t{args.temperature}-p{args.top_p}-s{args.seed}" + (f"_limit{args.limit}" if args.limit else "")
        root = Path(args.out_dir or results_root()) / (args.run_name or f"self-consistency_{bench}_{slug(args.model)}_{stem}")
        tts_res = _tts_run(args, argv, root / "tts")             # ... or one made here
    out = analyse(tts_res, repeats=args.repeats, seed=args.seed)  # 4. majority vote against the oracle
    result = {**provenance(__file__, argv, vars(args)), "kind": "self_consistency", "bench": bench,
              "source_run": str(Path(args.from_run)) if args.from_run else str(root / "tts"),
              "model": tts_res.get("model"), "sampling": tts_res.get("sampling"), "metrics": out}
    write_json_atomic(root / "result.json", result)
    pct = lambda x: "—" if x is None else f"{100 * x:.1f}"  # noqa: E731
    print(f"\nself-consistency · {bench} · n={out['n']} · {out['n_tasks']} tasks ({out['selector']})")
    print(f"  pass@1 (random) {pct(out['pass@1']['mean'])} · majority {pct(out['majority']['mean'])} · "
          f"greedy {pct((out['greedy'] or {}).get('mean'))} · oracle_pass@{out['n']} {pct(out['oracle_pass@n']['mean'])}")
    rec = out["recovered"]
    print(f"  recovered share of the oracle gap: {'— (no gap)' if rec is None else f'{100 * rec:.0f}%'}")
    print("  maj@m: " + ", ".join(f"{mm}: {pct(e['majority']['mean'])}" for mm, e in out["curve"].items()))
    print(f"  results: {root}")
    return 0


def _tts_run(args, argv, run_dir) -> dict:
    """The TTS run analysed here, written to ``run_dir``: math answers (majority vote over the
    extracted answers) or code (majority vote over execution behaviour)."""
    if args.bench in MATH:
        from common.tts_math import math_run_from_args, sample_math, select_math, write_math_result
        run = math_run_from_args(args, args.bench, __file__, argv, run_dir)
        samples = sample_math(run)                                              # 1. sample, answers extracted
        return write_math_result(run, samples, select_math(run, samples)[1])   # 2. select, 3. summarise
    import dataclasses
    from common.benchmarks import load_tasks
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.runtime import ModelConfig
    from common.tts_code import CodeTTSRun, execute_code, sample_code, select_code, write_code_result
    from common.tts_run import code_tts_from_args
    strategy, params, settings = code_tts_from_args(args)
    tasks, dataset = load_tasks(args.bench, limit=args.limit, path=args.data_path)
    job = EvalJob(run_dir, tasks, dataset, strategy.protocol, params, EvalModel.load(ModelConfig.from_args(args)),
                  Invocation(__file__, argv, vars(args)), RunOptions.from_args(args))
    run = CodeTTSRun(job, strategy, dataclasses.replace(settings, primary="behaviour_majority"))
    samples = sample_code(run)                                                  # 1. sample
    execution = execute_code(run, samples)                                      # 2. execute: behaviour
    return write_code_result(run, samples, execution, select_code(run, samples, execution))  # 3-4. select, summarise


if __name__ == "__main__":
    raise SystemExit(main())
