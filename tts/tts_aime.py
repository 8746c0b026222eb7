"""Test-time sampling on AIME: the pass@k curve, majority vote and oracle_pass@n.

Paper row: PAPER.md §1 claim 9 (AIME pass@k curve for Qwen3-8B base, k = 1..64: 25.6% pass@1,
38.9% "best-of-32" — an ORACLE number, §4 defect 5).

What it does: n samples per problem (default n=16; the paper's curve needs --n-samples 64),
T=0.8, top-p 0.95, the instruction "Solve this math problem step by step. The answer is an
integer from 0 to 999. Put the final answer in \\boxed{}.", greedy decoding beside them; the final
answer is taken from \\boxed{} (fallback: last number; counted) and checked against the integer
gold answer (common.math_benchmarks.grade_sample: integers compared exactly, anything else with
math-verify). Reported: pass@k for k = 1, 2, 4, 8, 16, ...
≤ n with the unbiased estimator (the curve), greedy, random (expected), majority_vote,
mean_logprob, sum_logprob and oracle_pass@n, each with a 95% interval, the share of the oracle
gap majority voting recovers, and the SSD precondition line (seed 003).

The method is the one math TTS pipeline of common/tts_math.py (sample, each answer extracted and
checked → select → summarise), shared with tts/tts_math500.py, which differs only in its
benchmark and its default n.

Full command (the 90 problems of AI-MO/aimo-validation-aime, the paper's k range):
    python tts/tts_aime.py --data-path aimo-validation-aime.jsonl --n-samples 64
Quick command (the repository's 3-problem fixture, a few minutes on 2 CPU cores):
    python tts/tts_aime.py --data-path tests/fixtures/aime.jsonl --model smollm2-135m-instruct \\
        --limit 2 --n-samples 3 --max-new-tokens 64

Writes results/<run>/result.json (kind "tts_math") and results/<run>/sampled/, greedy/ with
per-sample answers. Rerunning the same command resumes. Expected runtime on 2 CPU cores with
the 0.5B model: 90 × 65 answers of ≤ 1024 tokens is several days; the curve is a GPU job
(--backend vllm) or a --limit job here.

Deviations from the paper:
1. The curve uses the unbiased pass@k estimator over one draw of n samples, not the first k
   samples; "best-of-32" is reported as oracle_pass@n / pass@32, next to deployable majority
   voting.
2. Default n=16 and the 0.5B offline model (not Qwen3-8B base, n=64), to keep CPU runs finite.
"""
from __future__ import annotations

from common.tts_math import math_script

build_parser, main = math_script("aime", __doc__, __file__, n_samples=16)

if __name__ == "__main__":
    raise SystemExit(main())
