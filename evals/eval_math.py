"""Evaluate a model (optionally with a LoRA adapter) on a math benchmark: greedy accuracy with intervals.

Paper rows: the "base" and "after" columns of the math claims (PAPER.md §1 claims 5, 13, 14, 16:
GSM8K first 100 / MATH-500, chat), read on the offline sources here: the procedural set
(data/procedural_math.jsonl, 300 problems, levels 1-5) and CHAMP (champ, champ_int); GSM8K,
MATH-500 and AIME through --data-path.

What it does: the benchmark's instruction (PAPER.md §3: "Solve this math problem step by step.
End with the answer on a new line as: #### <number>" for procedural/GSM8K, the final answer in
\\boxed{} for CHAMP/MATH-500/AIME) in the model's chat template, greedy decoding, the final answer
extracted (common/answers.py) and checked against the gold answer with math-verify in a bounded
worker (common/answer_check.py). Each sample carries ``passed`` (flexible: tolerant of commas,
dollars, units, equivalent forms), ``strict_passed`` (``#### <number>`` right after the marker /
a \\boxed{}) and ``faithful_passed`` (the paper's rules, PAPER.md §4 defect 11).

Full command (300 procedural problems, embedded 0.5B model):
    python evals/eval_math.py --bench procedural
Quick command (2 problems, SmolLM2-135M, under a minute on 2 CPU cores):
    python evals/eval_math.py --bench procedural --model smollm2-135m-instruct --limit 2 --max-new-tokens 48
An adapter, then the paired comparison of the two runs (evals/confirm.py reads math runs too):
    python evals/eval_math.py --bench procedural --adapter results/train_multi_ext_qwen05b_trl
    python evals/confirm.py --base-run results/eval-math_procedural_<model>_chat_greedy \\
        --adapter-run results/eval-math_procedural_<model>_adapter-<...>_chat_greedy

Writes results/<run>/samples.jsonl (task_id, completion, answer, extraction, passed, status,
check, gold, strict_answer, strict_passed, faithful_answer, faithful_passed, tokens, finish
reason) and results/<run>/result.json (accuracy and pass@k with 95% intervals under each
verdict; protocol: template, format, stops, token budget; model file sha256, adapter sha256,
backend, seed; dataset sha256 and task ids; checker settings; counts). Rerunning resumes.
Expected runtime on 2 CPU cores with the 0.5B model: 300 problems x ~200 tokens at ~100
tokens/s, about 10 minutes; CHAMP (270 x up to 1024 tokens) about an hour.

Deviations from the paper: GSM8K and MATH-500 are not offline; the procedural set and CHAMP
stand in (named for what they are). Answers are checked with math-verify, not the paper's
first-"####"/string rules, which are reported beside (``faithful``).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args, add_sampling_args
    from common.math_benchmarks import MATH_BENCHMARKS
    from common.tts_math import MATH_FORMATS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--bench", default="procedural", choices=sorted(MATH_BENCHMARKS),
                   help="math benchmark (default procedural; gsm8k, math500, aime need --data-path)")
    p.add_argument("--data-path", default=None,
                   help="the benchmark's local file (procedural defaults to data/procedural_math.jsonl; champ "
                        "reads the installed champ-dataset wheel)")
    p.add_argument("--format", default="chat", choices=MATH_FORMATS,
                   help="chat: the instruction as a user turn in the chat template; raw: plain text ending in "
                        "'Solution:' (default chat)")
    add_model_args(p)
    add_sampling_args(p)
    add_run_args(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.cli import RunOptions, sampling_from_args
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.math_benchmarks import load_math_tasks
    from common.results import results_root
    from common.runtime import ModelConfig
    from common.tts_math import MathPrompt, evaluate_math, math_bench, math_run_name

    prompt = MathPrompt(math_bench(args.bench), args.format)                   # 1. the protocol
    params = sampling_from_args(args, prompt, logprobs=True)
    tasks, dataset = load_math_tasks(args.bench, limit=args.limit, path=args.data_path)   # 2. the problems
    model_cfg = ModelConfig.from_args(args)
    run_dir = Path(args.out_dir or results_root()) / (
        args.run_name or math_run_name(args.bench, model_cfg, prompt, params, args.limit, prefix="eval-math"))
    res = evaluate_math(EvalJob(run_dir, tasks, dataset, prompt, params, EvalModel.load(model_cfg),   # 3. generate,
                                Invocation(__file__, argv, vars(args)), RunOptions.from_args(args)))  # grade, summarise
    m = res["metrics"]
    print(f"\n{args.bench} · {res['model']['ref']}{' + ' + args.adapter if args.adapter else ''} · {prompt.name} · "
          f"{'greedy' if params.temperature == 0 else f'n={params.n} T={params.temperature}'} · {m['n_tasks']} tasks")
    for k, line in m["headline"].items():
        print(f"  {k}: {line}")
    for name in ("strict", "faithful"):
        print(f"  {name} pass@1: {100 * m[f'{name}_pass_at_k']['pass@1']['mean']:.1f}")
    print(f"  extraction: {m['extraction_counts']} · statuses: {m['status_counts']}\n  results: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
