"""Self-bootstrap: the model writes problems, solves them, mines repair pairs, trains on them.

Paper rows: PAPER.md §1 claims 3 and 4 (the 7B pairs behind 25 -> 95–112 on HumanEval), 11
(cross-architecture), 12 (saturation: ``recipe/bootstrap.py --model Qwen/Qwen3-8B-Base``),
15 (recursive bootstrap: ``--iterations 3``, iteration 1 gives most of the lift) and 18 (the
boundary chart runs this script once per model). Method: PAPER.md §2, stages 1–5.

Full command (paper constants; a GPU and vLLM for a 7B model):
    python recipe/bootstrap.py --model Qwen/Qwen2.5-7B --problems-per-iter 100 --run-name boot_7b \\
        --dtype bfloat16 --device cuda
Recursive bootstrap (claim 15):
    python recipe/bootstrap.py --model Qwen/Qwen2.5-7B --iterations 3 --run-name recursive_7b
Quick command (embedded 0.5B model on CPU: 8 problems, 2 attempts, 5 evaluation tasks; roughly
10–20 min on 2 cores, an estimate from the per-stage timings below):
    python recipe/bootstrap.py --problems-per-iter 8 --attempts 2 --max-new-tokens 256 --limit 5 \\
        --max-steps 4 --run-name boot_quick

Stages per iteration, each written under results/<run>/iter<i>/ and skipped on a rerun once
complete (``stages.json`` records each stage's counts and seconds):
1. generate  ``generated.jsonl``  one problem per call (T=0.9, top-p 0.95; ``--problem-style
   hard``: non-trivial algorithms at T=0.95);
2. verify    ``problems.jsonl``   parse with ``ast`` (>= 2 asserts, non-trivial body), drop
   problems sharing a 13-gram with HumanEval prompts/solutions (reported) and duplicates
   (normalised hash), run the reference against its own tests in the sandbox (8 s);
3. solve     ``solutions.jsonl``  4 attempts per problem at T=0.8, 400 tokens; the solver sees
   the signature, docstring and tests only, never the reference body;
4. check     ``attempts.jsonl``   every attempt's extracted code against the tests, in the sandbox;
5. repair    ``repair_pairs.jsonl`` one repair attempt (T=0.8) for problems every attempt failed;
   a passing repair becomes a pair;
6. mine      ``pairs.jsonl``      first failing attempt + first passing one per mixed problem,
   format junk (no code) never used as ``broken``, duplicate pairs dropped, pairs decontaminated;
7. train     ``adapter/``         LoRA (common.lora, PAPER.md §3) from the base model on all pairs
   so far (+ ``--extra-pairs``), after every ``--train-every`` iterations; later iterations mine
   with the newest adapter (``--mine-with-base`` turns that off);
8. evaluate  ``results/<run>/eval/`` base and adapter, greedy, under ``--eval-protocols``
   (he-chat and qwen-official by default) with common.evaluation.evaluate_code; paired deltas
   (McNemar p, bootstrap CI) in result.json.
Each stage is a function below (``generate_stage`` ... ``evaluate_stage``, the shared stage bodies
in common.mining and common.compare) and :func:`run_bootstrap` is the loop; recipe/multi_pair.py
is this script with the multi-pair settings (``VARIANTS["multi"]``).
The mined pairs go to ``data/pairs_<run-name>.jsonl`` (``--pairs-out``); results/<run>/result.json
holds provenance, every stage's counts, the pairs file's sha256 and the comparisons.
Expect, for the 0.5B model on 2 CPU cores (estimates, not a measured full run): seconds per
generated problem and per attempt (batched decoding), ~8 s per training example and epoch
(measured), ~10 min per 164-task evaluation and protocol (evals/eval_raw.py). The test run
(SmolLM2-135M, 2 problems + 2 seeded, 2 attempts of 64 tokens, 1 step, 2 tasks) takes ~2 min.

Deviations from the paper:
1. The solver never sees the reference body (PAPER.md §4 defect 1): the signature is rebuilt
   from the ``ast`` with the docstring as the only body.
2. Pairs never use format junk (an attempt with no extractable code) as ``broken``; the counts
   of such attempts are recorded (defect 4).
3. Programs pass only when the tests demonstrably ran (sandbox; defect 6); harness errors are
   never mined.
4. Problems and pairs that share a 13-gram with HumanEval are dropped (``--keep-contaminated``
   keeps them); the original did no decontamination.
5. Training masks the prompt (chat-masked) and is seeded; evaluation uses the corrected he-chat
   post-processing (defects 2, 3, 8, 9); ``--eval-protocols he-chat-faithful`` gives the original.
6. The solver prompt's wording is ours (the paper gives none): "Implement: {signature}\\n\\nTests:
   \\n{tests}\\n\\nOutput the complete function in a ```python block."
7. A resumed generation stage draws fresh seeds for the items it still has to generate.
"""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field

from common.prompts import PAPER_MULTI_SYSTEM
from common.results import InputError

VARIANTS = {
    # plain bootstrap: PAPER.md §2 stages 1-5, repair attempt for all-fail problems
    "plain": {"mining": {}, "lora": {}, "problems": 100, "protocols": "he-chat,qwen-official"},
    # multi-pair: 8 attempts, 500 tokens, up to 4 distinct failing attempts, r32/α64, no repair
    "multi": {"mining": {"attempts": 8, "max_new_tokens": 500, "max_pairs_per_problem": 4,
                         "repair_all_fail": False, "system": PAPER_MULTI_SYSTEM},
              "lora": {"lora_rank": 32, "lora_alpha": 64},
              "problems": 200, "protocols": "he-chat-multi,he-chat,qwen-official"},
}


def build_parser(variant: str = "plain", doc: str = __doc__) -> argparse.ArgumentParser:
    """The parser of this script (``plain``) and of recipe/multi_pair.py (``multi``)."""
    from common.cli import add_model_args, add_run_args
    from common.compare import add_eval_args
    from common.lora import add_lora_args
    from common.mining import add_mining_args
    v = VARIANTS[variant]
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc)
    add_model_args(p, adapter=False)
    g = p.add_argument_group("loop")
    g.add_argument("--iterations", type=int, default=1,
                   help="mine -> train rounds; later rounds mine with the latest adapter and retrain from the "
                        "base model on all pairs so far (default 1)")
    g.add_argument("--problems-per-iter", type=int, default=v["problems"],
                   help=f"problems generated per iteration (default {v['problems']})")
    g.add_argument("--train-every", type=int, default=1,
                   help="train after every k-th iteration (and always after the last; default 1)")
    g.add_argument("--eval-every", type=int, default=1,
                   help="evaluate every k-th trained adapter (and always the last; 0 = never; default 1)")
    g.add_argument("--seed-problems", default=None,
                   help="problems JSONL ({id, entry_point, signature, reference, tests}) added to iteration 1's "
                        "generated problems; they are verified and solved like the others")
    g.add_argument("--warmup-pairs" if variant == "multi" else "--extra-pairs", dest="extra_pairs", default=None,
                   help="pairs JSONL added to every training set (not to the output pairs file); its path, sha256, "
                        "count and source models are recorded")
    g.add_argument("--pairs-out", default=None,
                   help="where the mined pairs go (default data/pairs_<run-name>.jsonl in the repository)")
    g.add_argument("--mine-with-base", action="store_true",
                   help="later iterations mine with the base model instead of the latest adapter")
    g.add_argument("--mine-only", action="store_true",
                   help="stop after mining (one iteration): write the pairs file and result.json, train and "
                        "evaluate nothing; then train with recipe/train_on_pairs.py and evaluate with "
                        "evals/eval_raw.py --adapter / evals/confirm.py")
    add_mining_args(p, **v["mining"])
    add_lora_args(p, system_flag=False, **v["lora"])
    add_eval_args(p, protocols=v["protocols"])
    add_run_args(p)
    return p


@dataclass(frozen=True)
class Loop:
    """The ``loop`` flags, checked."""
    iterations: int
    problems_per_iter: int
    train_every: int
    eval_every: int
    mine_with_base: bool
    mine_only: bool

    def __post_init__(self):
        for name, lo in (("iterations", 1), ("problems_per_iter", 0), ("train_every", 1), ("eval_every", 0)):
            if getattr(self, name) < lo:
                raise InputError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(self, name)}")
        if self.mine_only and self.iterations != 1:
            raise InputError("--mine-only mines one iteration (later iterations would mine with an adapter)")

    @classmethod
    def from_args(cls, args) -> "Loop":
        return cls(args.iterations, args.problems_per_iter, args.train_every, args.eval_every, args.mine_with_base,
                   args.mine_only)

    def trains_after(self, it: int) -> bool:
        return not self.mine_only and (it % self.train_every == 0 or it == self.iterations)


@dataclass
class Bootstrap:
    """One bootstrap run: the loop settings, the model/training/evaluation settings (a
    common.compare.TrainEvalSetup), the seed problems, the extra (warm-up) pairs, and what
    training and evaluation produced so far."""
    loop: Loop
    setup: object
    seed_problems: list[dict]
    extra_pairs: list[dict]
    extra_info: dict | None
    adapter: str | None = None       # the newest adapter
    n_trained: int = 0
    trainings: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=dict)


def main(argv=None, variant: str = "plain", script: str = __file__, doc: str = __doc__) -> int:
    from common.cli import run_main
    return run_main(functools.partial(_main, variant=variant, script=script, doc=doc), argv)


def _main(argv, variant: str, script: str, doc: str) -> int:
    args = build_parser(variant, doc).parse_args(argv)
    res = run_bootstrap(args, variant, script, argv)
    print_summary(res)
    return 0


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def run_bootstrap(args, variant: str, script: str, argv) -> dict:
    """Generate -> verify -> solve -> check [-> repair] -> mine -> train -> evaluate, per
    iteration, each stage skipped once complete; writes results/<run>/result.json."""
    import time

    from common.compare import ModelSlot
    from common.mining import MiningRun, write_pairs_file
    from common.results import write_json_atomic
    boot, mcfg, resolved = configure(args, script, argv)
    run_dir, pairs_out, config = run_place(args, variant, boot, mcfg, resolved)
    t_start = time.time()
    slot = ModelSlot(resolved, boot.setup.model)
    with MiningRun.open(run_dir, config, boot.setup.overwrite, slot, mcfg, boot.setup.ev.options) as run:
        for it in range(1, boot.loop.iterations + 1):
            mine_with = None if boot.loop.mine_with_base else boot.adapter
            get = (lambda a=mine_with: slot.get(a))
            generated = generate_stage(run, it, get, boot.loop.problems_per_iter)
            problems = verify_stage(run, it, generated, boot.seed_problems if it == 1 else [])
            solved = solve_stage(run, it, get, problems)
            checked = run.check(f"iter{it}/check", run.dir / f"iter{it}" / "attempts.jsonl", problems, solved)
            repaired = repair_stage(run, it, get, problems, checked) if mcfg.repair_all_fail else []
            mine_stage(run, it, problems, checked, repaired)
            if boot.loop.trains_after(it) and train_stage(run, it, boot):
                evaluate_stage(run, it, boot)
    out_info = write_pairs_file(pairs_out, run.pairs)
    result = {
        **boot.setup.ev.invocation.provenance(),
        "variant": variant,
        "config": config,
        "model": resolved.provenance(),
        "stages": run.book.data,
        "totals": _totals(run.book.data),
        "pairs_out": out_info,
        "extra_pairs": boot.extra_info,
        "training": boot.trainings,
        "evaluation": boot.evaluations,
        "timings": {"total_s_this_invocation": round(time.time() - t_start, 1)},
    }
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def configure(args, script: str, argv) -> tuple[Bootstrap, object, object]:
    """The run's settings from the flags, its input files read and checked, the model resolved."""
    from common.compare import TrainEvalSetup
    from common.mining import MiningConfig
    from common.models import resolve_model
    from common.pairs import load_pairs, pairs_provenance
    from common.problems import load_problems
    loop, mcfg = Loop.from_args(args), MiningConfig.from_args(args)
    train_eval = TrainEvalSetup.from_args(script, argv, args)
    seed_problems = load_problems(args.seed_problems) if args.seed_problems else []
    if not loop.problems_per_iter and not seed_problems:
        raise InputError("--problems-per-iter 0 needs --seed-problems (there would be nothing to mine)")
    extra_pairs = load_pairs(args.extra_pairs) if args.extra_pairs else []
    extra_info = pairs_provenance(args.extra_pairs, extra_pairs) if args.extra_pairs else None
    boot = Bootstrap(loop, train_eval, seed_problems, extra_pairs, extra_info)
    return boot, mcfg, resolve_model(args.model)


def run_place(args, variant: str, boot: Bootstrap, mcfg, resolved):
    """(results/<run>/, the output pairs file, the run's config.json)."""
    import json
    from pathlib import Path

    from common.pairs import pairs_provenance
    from common.results import REPO_ROOT, slug
    run_name = args.run_name or f"{variant}_bootstrap_{slug(args.model)}_s{mcfg.seed}"
    run_dir = boot.setup.run_dir(run_name)
    pairs_out = Path(args.pairs_out) if args.pairs_out else REPO_ROOT / "data" / f"pairs_{run_name}.jsonl"
    loop = boot.loop
    config = {"variant": variant, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "mining": mcfg.to_dict(), "training": boot.setup.train.to_dict(), "iterations": loop.iterations,
              "problems_per_iter": loop.problems_per_iter, "train_every": loop.train_every,
              "eval_every": loop.eval_every, "mine_with_base": loop.mine_with_base,
              "seed_problems": pairs_provenance(args.seed_problems, boot.seed_problems) if boot.seed_problems else None,
              "extra_pairs": boot.extra_info, "eval": boot.setup.ev.spec.to_config()}
    return run_dir, pairs_out, json.loads(json.dumps(config))


# --------------------------------------------------------------------------------------------
# Stages (files under results/<run>/iter<i>/)
# --------------------------------------------------------------------------------------------


def seed_of(run, it: int) -> int:
    """Iteration ``it``'s sampling seed (iterations draw disjoint streams)."""
    return run.cfg.seed + 1000 * (it - 1)


def generate_stage(run, it: int, get, n: int) -> list[dict]:
    """1. ``n`` problems written by the model (generated.jsonl, one row per problem)."""
    from collections import Counter

    from common.mining import generate_problems
    from common.rundir import read_rows
    path = run.dir / f"iter{it}" / "generated.jsonl"

    def generate():
        rows = generate_problems(path, get, f"it{it}", n, run.cfg, seed_of(run, it), run.progress) if n else []
        return [], {"generated": len(rows),
                    "finish_reasons": dict(Counter(r["samples"][0]["finish_reason"] for r in rows))}
    run.book.run(f"iter{it}/generate", None, generate)     # generated.jsonl is the resumable log itself
    return read_rows(path)


def verify_stage(run, it: int, generated: list[dict], seed_problems: list[dict]) -> list[dict]:
    """2. Parse, decontaminate, dedup, self-verify (problems.jsonl); the verified problems."""
    from common.mining import seed_candidates

    def candidates():
        return [{"key": r["key"], "text": r["samples"][0]["text"], "origin": "generated"}
                for r in generated] + seed_candidates(seed_problems)
    return run.verify(f"iter{it}/verify", run.dir / f"iter{it}" / "problems.jsonl", candidates)


def solve_stage(run, it: int, get, problems: list[dict]) -> list[dict]:
    """3. ``attempts`` sampled solutions per problem (solutions.jsonl); the solver never sees the
    reference body."""
    from common.mining import generate_into, solve_items
    from common.rundir import read_rows
    path, cfg = run.dir / f"iter{it}" / "solutions.jsonl", run.cfg

    def solve():
        solved = generate_into(path, get, solve_items(problems, cfg.system),
                               cfg.params(cfg.solve_temperature, n=cfg.attempts, seed=seed_of(run, it) + 11),
                               desc="solve", progress=run.progress) if problems else []
        return [], {"problems": len(problems), "attempts": sum(len(s["samples"]) for s in solved)}
    run.book.run(f"iter{it}/solve", None, solve)
    return read_rows(path)


def repair_stage(run, it: int, get, problems: list[dict], checked: list[dict]) -> list[dict]:
    """5. One repair attempt per all-fail problem; passing repairs are pairs (repair_pairs.jsonl)."""
    from common.mining import check_repairs, generate_into, repair_items
    idir, cfg = run.dir / f"iter{it}", run.cfg

    def repair():
        items = repair_items(problems, checked, cfg.system)
        repaired = generate_into(idir / "repairs_raw.jsonl", get, items,
                                 cfg.params(cfg.solve_temperature, seed=seed_of(run, it) + 23),
                                 desc="repair", progress=run.progress) if items else []
        return check_repairs(problems, checked, repaired, run.pool, cfg, run.slot.resolved.ref, cfg.seed)
    return run.book.run(f"iter{it}/repair", idir / "repair_pairs.jsonl", repair)


def mine_stage(run, it: int, problems: list[dict], checked: list[dict], repaired: list[dict]) -> None:
    """6. Pairs from mixed problems + passing repairs, deduplicated against every earlier pair and
    decontaminated (pairs.jsonl); they join ``run.pairs``."""
    def mine():
        pairs, counts = run.mine(problems, checked, repaired)
        return pairs, {**counts, "repair_pairs": len(repaired)}
    run.pairs += run.book.run(f"iter{it}/mine", run.dir / f"iter{it}" / "pairs.jsonl", mine)


def train_stage(run, it: int, boot: Bootstrap) -> bool:
    """7. LoRA from the base model on every pair so far + the extra pairs (iter<i>/adapter/);
    False when there is nothing to train on."""
    import logging

    from common.compare import summarize_training
    from common.lora import train_adapter
    from common.mining import write_pairs_file
    idir = run.dir / f"iter{it}"
    train_pairs = boot.extra_pairs + run.pairs
    if not train_pairs:
        logging.getLogger(__name__).warning("iteration %d: no pairs to train on; training skipped", it)
        boot.trainings[f"iter{it}"] = {"skipped": True, "reason": "no pairs"}
        return False
    run.slot.release()
    info = write_pairs_file(idir / "train_pairs.jsonl", train_pairs)
    info.update(mined=len(run.pairs), extra=len(boot.extra_pairs))
    ev = boot.setup.ev
    tres = train_adapter(run.slot.resolved, train_pairs, info, boot.setup.train, idir / "adapter", ev.invocation,
                         ev.options, extra={"extra_pairs": boot.extra_info})
    boot.trainings[f"iter{it}"] = summarize_training(tres)
    boot.adapter = str(idir / "adapter")
    boot.n_trained += 1
    return True


def evaluate_stage(run, it: int, boot: Bootstrap) -> None:
    """8. Base and the new adapter, greedy, paired per protocol (results/<run>/eval/), for every
    ``--eval-every``-th adapter and the last one."""
    from common.compare import evaluate_and_compare
    if boot.loop.eval_every and (boot.n_trained % boot.loop.eval_every == 0 or it == boot.loop.iterations):
        boot.evaluations[f"iter{it}"] = evaluate_and_compare(run.slot, {f"iter{it}": boot.adapter},
                                                             run.dir / "eval", boot.setup.ev)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _totals(stages: dict) -> dict:
    """Sums over iterations of the counts every report needs."""
    from collections import Counter
    tot = Counter()
    wanted = {"generate": ("generated",), "verify": ("parsed", "contaminated", "duplicates", "verified"),
              "check": ("problems", "attempts", "passes", "all_pass", "all_fail", "mixed"),
              "repair": ("repair_attempts", "repairs_passed"),
              "mine": ("n_pairs", "repair_pairs", "n_duplicate_failing", "n_junk", "duplicates_dropped",
                       "pairs_out")}
    for key, v in stages.items():
        stage = key.split("/", 1)[1]
        for f in wanted.get(stage, ()):
            c = v["counts"].get(f)
            if isinstance(c, (int, float)):
                tot[f"{stage}.{f}"] += c
    return dict(tot)


def print_summary(res: dict) -> None:
    from common.compare import print_comparisons
    t = res["totals"]
    print(f"\n{res['variant']} bootstrap · {res['model']['ref']} · {res['run_dir']}")
    seeded = sum(v["counts"].get("origins", {}).get("seed-file", 0) for k, v in res["stages"].items()
                 if k.endswith("/verify"))
    print(f"  problems: generated {t.get('generate.generated', 0)}" + (f" (+{seeded} from --seed-problems)" if seeded else "")
          + f", parsed {t.get('verify.parsed', 0)}, "
          f"verified {t.get('verify.verified', 0)} (contaminated {t.get('verify.contaminated', 0)}, "
          f"duplicates {t.get('verify.duplicates', 0)})")
    print(f"  attempts: {t.get('check.attempts', 0)}, passes {t.get('check.passes', 0)}; problems all-pass "
          f"{t.get('check.all_pass', 0)}, mixed {t.get('check.mixed', 0)}, all-fail {t.get('check.all_fail', 0)}")
    print(f"  pairs: {res['pairs_out']['count']} -> {res['pairs_out']['path']}")
    for it, ev in res["evaluation"].items():
        print_comparisons(f"  evaluation {it}", ev)


if __name__ == "__main__":
    raise SystemExit(main())
