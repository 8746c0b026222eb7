"""Test-time sampling on MATH-500: pass@k, majority vote (self-consistency) and oracle_pass@n.

Paper row: PAPER.md §1 claim 8 (TTS on math: MATH-500 "best-of-8" 397 / 405 of 500 for
Qwen3-4B / 8B base — an ORACLE number, §4 defect 5); seed 000 §8.2 (majority voting).

What it does: n samples per problem (default n=8, T=0.8, top-p 0.95) with the instruction
"Solve this math problem step by step. Put the final answer in \\boxed{}.", greedy decoding beside
them, the final \\boxed{} answer of each sample (fallback: last number; counted), checked against
the dataset's answer with math-verify in a bounded worker (common.math_benchmarks.grade_sample;
the strict and the paper's faithful verdicts recorded beside it). Reported side by side as pass@1 with 95%
intervals: greedy, random (expected), majority_vote (the most frequent answer, equal answers
grouped by their normalised value), mean_logprob, sum_logprob and oracle_pass@n (any sample
right — coverage, not deployable); pass@k for k = 1, 2, 4, ... ≤ n (unbiased estimator), the
share of the oracle gap majority voting recovers, and the SSD precondition line (seed 003).

The method is the one math TTS pipeline of common/tts_math.py (sample, each answer extracted and
checked → select → summarise), shared with tts/tts_aime.py, which differs only in its benchmark
and its default n.

Full command (500 problems; needs the MATH-500 file, HuggingFaceH4/MATH-500 test split):
    python tts/tts_math500.py --data-path MATH-500/test.jsonl --n-samples 8
Quick command (the repository's 4-problem fixture, a few minutes on 2 CPU cores):
    python tts/tts_math500.py --data-path tests/fixtures/math500.jsonl --model smollm2-135m-instruct \\
        --limit 2 --n-samples 3 --max-new-tokens 64

Writes results/<run>/result.json (kind "tts_math"), results/<run>/sampled/ and greedy/
(samples.jsonl with raw text, extracted answer, extraction rule, verdict, log-probabilities).
Rerunning the same command resumes. Expected runtime on 2 CPU cores with the 0.5B model: the
full command generates 500 × 9 answers of ≤ 1024 tokens, roughly 10–15 hours; use --limit.

Deviations from the paper:
1. "best-of-8" is reported as oracle_pass@8, beside majority vote and log-probability
   selection (deployable); pass@k uses the unbiased estimator.
2. Default model is Qwen2.5-Coder-0.5B-Instruct (offline), not Qwen3-4B/8B base; answers are
   compared with math-verify (common/answer_check.py), not the paper's checker. Offline, the
   same pipeline runs on the procedural set and CHAMP: tts/tts_procedural.py.
"""
from __future__ import annotations

from common.tts_math import math_script

build_parser, main = math_script("math500", __doc__, __file__, n_samples=8)

if __name__ == "__main__":
    raise SystemExit(main())
