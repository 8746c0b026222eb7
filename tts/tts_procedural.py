"""Test-time sampling on the offline math sources: pass@k, majority vote (self-consistency) and oracle_pass@n.

Paper rows: PAPER.md §1 claims 8-9 (TTS on math: MATH-500 "best-of-8", the AIME pass@k curve —
ORACLE numbers, §4 defect 5) measured where this machine can: the procedural set
(data/procedural_math.jsonl, 300 problems, levels 1-5) by default, CHAMP with ``--bench champ`` or
``--bench champ_int``. The same pipeline as tts/tts_math500.py and tts/tts_aime.py
(common/tts_math.py: sample, each answer extracted and checked with math-verify → select →
summarise); the sources differ only in their instruction (``####`` line for procedural, \\boxed{}
for CHAMP) and token budget.

What it does: n samples per problem (default n=8, T=0.8, top-p 0.95) and a greedy answer beside
them; reported with 95% intervals: pass@k for k = 1, 2, 4, ... <= n (unbiased estimator), greedy,
random (expected pass@1), majority_vote (equal answers vote together), mean/sum log-probability
selection and oracle_pass@n (any sample right: coverage, not deployable), the share of the oracle
gap majority voting recovers, difficulty slices and the SSD precondition line (seed 003).

Full command (300 procedural problems, embedded 0.5B model):
    python tts/tts_procedural.py --n-samples 8
Quick command (2 problems, SmolLM2-135M, under a minute on 2 CPU cores):
    python tts/tts_procedural.py --model smollm2-135m-instruct --limit 2 --n-samples 3 --max-new-tokens 48

Writes results/<run>/result.json (kind "tts_math") and results/<run>/sampled/, greedy/ (samples with
text, answers, verdicts, log-probabilities). Rerunning resumes. Expected runtime on 2 CPU cores
with the 0.5B model: 300 problems x 9 answers x ~200 tokens at ~100 tokens/s, about 1.5 hours;
CHAMP (270 x 9 x up to 1024 tokens) most of a day, use --limit.

Deviations from the paper: the procedural set and CHAMP stand in for MATH-500 and AIME (offline);
"best-of-n" is reported as oracle_pass@n beside deployable majority voting.
"""
from __future__ import annotations

from common.tts_math import math_script

build_parser, main = math_script("procedural", __doc__, __file__, n_samples=8,
                                 choices=("procedural", "champ", "champ_int"))

if __name__ == "__main__":
    raise SystemExit(main())
