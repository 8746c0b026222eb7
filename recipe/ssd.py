"""Simple self-distillation (SSD; issue 17, seed 003 Deliverables B and C): sample the frozen model
at a raised temperature with truncation on a prompt pool disjoint from the held-out set, and
fine-tune (LoRA, plain cross-entropy on the assistant turn) on the raw samples — the ``minimal``
arm — and, as a separate arm, on the samples that pass their prompt's tests — the ``verifier``
arm. The two arms share the sampling step and nothing else; every count, file, adapter and
number is kept per arm.

Not a PAPER.md claim: the SSD recipe (published data-generation settings: T_train 1.5-1.6,
top-k 20, top-p 0.8, one sample per prompt, no correctness filter, empty responses and the
shortest 10% dropped) on the embedded 0.5B model, the smallest model it has been tried on.

Stages (results/<run>/, each skipped on a rerun once done; stages.json holds counts and seconds):
1. pool/generate  the model writes problems (recipe/bootstrap.py's stage 1: one function with a
   docstring, reference and asserts per call, T=0.9, top-p 0.95) — ``--pool-size`` calls; and/or
   ``--pool-file`` problems;
2. pool/verify    parse with ``ast``, drop problems sharing a 13-gram with ANY held-out problem
   (HumanEval + data/external_problems.jsonl by default; the report is in result.json), drop
   duplicates, keep those whose reference passes its own asserts in the sandbox; split by a
   seeded hash into train (sampled, trained on) and val (``--val-fraction``; only
   evals/ssd_eval.py's T_eval tuning reads it); round 2 also drops every round-1 problem;
3. sample         ``--n-per-prompt`` samples per train prompt at ``--t-train`` 1.5, top-k 20,
   top-p 0.8 (per-sample seeds; resumable), rendered by the evaluation protocol (he-chat), each
   scored against the prompt's asserts in the sandbox (the verifier arm reads the verdicts);
4. filter         minimal: drop empty and stub responses, then the shortest ``--drop-shortest``
   (10%) by generated tokens; verifier: keep the passing samples (acceptance rate recorded);
   each arm plus the declared ``--mix-ratio`` of anchor records (pool references; default 0);
5. train/<arm>    LoRA from the base weights through common.lora.train_adapter (TRL SFT; rank 64,
   alpha 128, lr 2e-4, 1 epoch by default: seed 003's LoRA range) into arms/<arm>/adapter/.

Full command (embedded 0.5B model; every call sees the same instruction, so duplicates grow with
the pool: the first 1,200 calls gave 163 verified problems, 598 were dropped for too few asserts
and 198 as duplicates; 2,400 calls for a pool of a few hundred):
    python recipe/ssd.py --pool-size 2400 --run-name ssd_qwen05b
Round 2 (refused unless the round-2 gate passed; samples from the round-1 arm's adapter, a fresh
pool; the gate reads the held-out evaluation and the battery):
    python recipe/ssd.py --round 2 --round1-run results/ssd_qwen05b --arm minimal \\
        --gate-eval results/ssd_eval_qwen05b/result.json --gate-battery results/ssd_battery_qwen05b/result.json \\
        --pool-size 2400 --pool-seed 1 --run-name ssd_qwen05b_round2
Quick command (SmolLM2, 2 generated problems + a problems file, 2 samples each, 1 step):
    python recipe/ssd.py --model smollm2-135m-instruct --pool-size 2 --pool-file POOL.jsonl \\
        --n-per-prompt 2 --max-new-tokens 48 --pool-max-new-tokens 64 --max-steps 1 --run-name ssd_quick

Writes results/<run>/result.json (provenance, the pool with its decontamination report, the
sampling settings, and ``arms.minimal`` / ``arms.verifier`` each with filter counts, the mix,
training summary and adapter path), pool/*.jsonl, samples/ (an evaluation run directory: every
sample with raw text and verdict), arms/<arm>/train.jsonl and arms/<arm>/adapter/.
Expect on 2 cores for the 0.5B model: ~1-2 s per problem call (batched), ~1 s per sample at 400
tokens, ~5-8 s per training example; ~300 prompts ≈ 20-40 min pool + 10-20 min sampling + 30-40 min
training per arm.

Deviations from the published recipe and seed 003:
1. Prompts: the model's own problem statements (offline; the recipe used rStar-Coder), rendered
   in the evaluation's he-chat format, so training and evaluation prompts have one shape.
2. LoRA instead of full fine-tuning (CPU); the verifier arm's verifier is the prompt's own
   model-written asserts, which the reference passes (self-consistency, not correctness).
3. Round 2 trains a new LoRA from the base weights on samples of the round-1 model (the
   repository's recursive-bootstrap convention): common.lora.train_adapter starts from the base.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from common.results import InputError

SSD_LORA = {"lora_rank": 64, "lora_alpha": 128, "lr": 2e-4, "epochs": 1}


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.lora import add_lora_args
    from common.mining import PROBLEM_STYLES
    from common.prompts import PROTOCOLS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_model_args(p, adapter=False)
    g = p.add_argument_group("round")
    g.add_argument("--round", type=int, default=1, choices=(1, 2), help="SSD round (2 needs the gate; default 1)")
    g.add_argument("--round1-run", default=None, help="round 2: the round-1 run directory")
    g.add_argument("--arm", default=None, choices=("minimal", "verifier"), help="round 2: the round-1 arm to continue")
    g.add_argument("--gate-eval", default=None, help="round 2: evals/ssd_eval.py result.json of round 1")
    g.add_argument("--gate-battery", default=None, help="round 2: evals/ssd_battery.py result.json of round 1")
    g.add_argument("--thresholds", default=None, help="thresholds file (default data/ssd_thresholds.json)")
    g = p.add_argument_group("prompt pool")
    g.add_argument("--pool-size", type=int, default=2400, help="problem-writing calls (default 2400; 0 = none)")
    g.add_argument("--pool-file", default=None, help="problems JSONL added to the pool (verified like the others)")
    g.add_argument("--problem-style", default="plain", choices=PROBLEM_STYLES, help="problem prompt (default plain)")
    g.add_argument("--pool-max-new-tokens", type=int, default=400, help="tokens per problem call (default 400)")
    g.add_argument("--pool-seed", type=int, default=0, help="problem-writing seed (default 0)")
    g.add_argument("--val-fraction", type=float, default=0.15,
                   help="pool share held back for T_eval tuning, never trained on (default 0.15)")
    g.add_argument("--heldout", default="humaneval,problems",
                   help="held-out benchmarks the pool is decontaminated against (default humaneval,problems)")
    g = p.add_argument_group("SSD sampling and filter (published recipe)")
    g.add_argument("--protocol", default="he-chat", choices=sorted(PROTOCOLS), help="prompt format (default he-chat)")
    g.add_argument("--t-train", type=float, default=1.5, help="sampling temperature T_train (default 1.5)")
    g.add_argument("--top-k", type=int, default=20, help="top-k truncation (default 20)")
    g.add_argument("--top-p", type=float, default=0.8, help="nucleus truncation (default 0.8)")
    g.add_argument("--n-per-prompt", type=int, default=1, help="samples per prompt (default 1)")
    g.add_argument("--max-new-tokens", type=int, default=400, help="tokens per sample (default 400)")
    g.add_argument("--sample-seed", type=int, default=0, help="sampling seed; each sample has its own stream")
    g.add_argument("--drop-shortest", type=float, default=0.10, help="minimal arm: shortest share dropped (default 0.10)")
    g.add_argument("--mix-ratio", type=float, default=0.0,
                   help="declared share of anchor records (pool references) in each arm's training set (default 0)")
    g.add_argument("--arms", default="minimal,verifier", help="arms to train (default minimal,verifier)")
    add_lora_args(p, system_flag=False, **SSD_LORA)
    p.set_defaults(system="")
    add_run_args(p)
    return p


@dataclass(frozen=True)
class SSDSettings:
    """The flags of one SSD run, checked."""
    round: int
    arms: tuple
    pool_size: int
    pool_file: str | None
    val_fraction: float
    heldout: tuple
    protocol: str
    sampling: object          # common.sampling.SamplingParams
    drop_shortest: float
    mix_ratio: float
    limit: int | None

    @classmethod
    def from_args(cls, args) -> "SSDSettings":
        from common.prompts import get_protocol
        from common.sampling import SamplingParams
        arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
        if not arms or any(a not in ("minimal", "verifier") for a in arms):
            raise InputError(f"--arms must name minimal and/or verifier, got {args.arms!r}")
        if args.pool_size < 0 or (args.pool_size == 0 and not args.pool_file):
            raise InputError("the pool needs --pool-size > 0 or a --pool-file")
        if args.t_train <= 0:
            raise InputError("--t-train must be > 0 (SSD samples; greedy is not SSD)")
        proto = get_protocol(args.protocol)
        params = SamplingParams(n=args.n_per_prompt, temperature=args.t_train, top_p=args.top_p, top_k=args.top_k,
                                max_new_tokens=args.max_new_tokens, stop=proto.stop, seed=args.sample_seed,
                                logprobs=True)
        return cls(args.round, arms, args.pool_size, args.pool_file, args.val_fraction,
                   tuple(b.strip() for b in args.heldout.split(",") if b.strip()), args.protocol, params,
                   args.drop_shortest, args.mix_ratio, args.limit)


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.cli import RunOptions
    from common.compare import ModelSlot
    from common.evaluation import Invocation
    from common.lora import TrainConfig
    from common.models import resolve_model
    from common.results import results_root, slug
    from common.rundir import StageBook, prepare_run_dir
    from common.runtime import ModelConfig
    s = SSDSettings.from_args(args)
    train_cfg = TrainConfig.from_args(args)
    from common.ssd import load_thresholds
    th = load_thresholds(args.thresholds)     # recorded: the battery must be declared before training
    sampler, round1 = round_gate(args, s)
    resolved = resolve_model(args.model)
    slot = ModelSlot(resolved, ModelConfig.from_args(args))
    run_dir = Path(args.out_dir or results_root()) / (args.run_name or f"ssd_{slug(args.model)}_round{s.round}")
    config = {"model": slot.info(None), "round": s.round, "sampler_adapter": sampler,
              "settings": {**vars(s), "sampling": s.sampling.to_dict()}, "train_config": train_cfg.identity(),
              "pool_seed": args.pool_seed, "problem_style": args.problem_style,
              "pool_max_new_tokens": args.pool_max_new_tokens}
    prepare_run_dir(run_dir, config, args.overwrite)
    ctx = Ctx(run_dir, StageBook(run_dir), slot, sampler, Invocation(__file__, argv, vars(args)),
              RunOptions.from_args(args), train_cfg, {"path": th["_path"], "sha256": th["_sha256"]})
    t0 = time.time()
    generated = pool_generate_stage(ctx, s, args)
    train_tasks, pool_info = pool_verify_stage(ctx, s, args, generated, round1)
    samples = sample_stage(ctx, s, train_tasks, pool_info["dataset"])
    arms = {arm: filter_stage(ctx, s, arm, samples, train_tasks) for arm in s.arms}
    for arm in s.arms:
        arms[arm]["training"] = train_stage(ctx, arm)
    return write_result(ctx, s, config, pool_info, arms, t0)


def round_gate(args, s: SSDSettings) -> tuple[str | None, dict | None]:
    """Round 1: sample the frozen base. Round 2: refused unless the gate passed for ``--arm``;
    then the sampler is that arm's round-1 adapter. Returns (sampler adapter, round-1 result)."""
    if s.round == 1:
        if args.round1_run or args.arm:
            raise InputError("--round1-run/--arm are round-2 flags")
        return None, None
    from common.ssd import load_json_file, load_thresholds, round2_gate
    miss = [f for f, v in (("--round1-run", args.round1_run), ("--arm", args.arm), ("--gate-eval", args.gate_eval),
                           ("--gate-battery", args.gate_battery)) if not v]
    if miss:
        raise InputError(f"--round 2 refused: it needs {', '.join(miss)} (the round-2 gate reads them)")
    gate = round2_gate(args.arm, load_json_file(args.gate_eval, "--gate-eval"),
                       load_json_file(args.gate_battery, "--gate-battery"), load_thresholds(args.thresholds)["round2_gate"])
    if not gate["passed"]:
        failed = "; ".join(f"{c['name']}: {c['detail']}" for c in gate["conditions"] if not c["ok"])
        raise InputError(f"--round 2 refused: the round-2 gate did not pass for arm {args.arm} ({failed})")
    r1 = load_json_file(Path(args.round1_run) / "result.json", "round-1 result")
    adapter = r1.get("arms", {}).get(args.arm, {}).get("adapter")
    if not adapter or not Path(adapter).is_dir():
        raise InputError(f"round-1 run {args.round1_run} has no trained {args.arm} adapter")
    return adapter, {**r1, "gate": gate, "run_dir": args.round1_run}


@dataclass
class Ctx:
    """What the stages of one SSD run share."""
    dir: Path
    book: object
    slot: object
    sampler: str | None
    invocation: object
    options: object
    train_cfg: object
    thresholds: dict


def pool_generate_stage(ctx: Ctx, s: SSDSettings, args) -> list[dict]:
    """1. Problems written by the model (pool/generated.jsonl, resumable)."""
    from common.mining import MiningConfig, generate_problems
    from common.results import JsonlLog
    from common.rundir import read_rows
    path = ctx.dir / "pool" / "generated.jsonl"
    cfg = MiningConfig(problem_style=args.problem_style, max_new_tokens=args.pool_max_new_tokens, seed=args.pool_seed)

    def generate():     # the stage's seconds are this invocation's: count its calls (the cost ledger scales)
        with JsonlLog(path) as log:
            before = len(log.rows)
        rows = generate_problems(path, lambda: ctx.slot.get(ctx.sampler), f"r{s.round}", s.pool_size, cfg,
                                 args.pool_seed, ctx.options.progress) if s.pool_size else []
        return [], {"generated": len(rows), "generated_this_invocation": len(rows) - before}
    ctx.book.run("pool/generate", None, generate)
    return read_rows(path)


def pool_verify_stage(ctx: Ctx, s: SSDSettings, args, generated: list[dict], round1: dict | None):
    """2. Parse, decontaminate against the held-out set, dedup, self-verify, split train/val.
    Returns (train tasks, pool info for result.json)."""
    from common.benchmarks import load_tasks
    from common.results import file_sha256, write_jsonl_atomic
    from common.ssd_data import fresh_only, pool_problem, split_pool

    def verify():
        from common.mining import MiningConfig, seed_candidates, verify_problems
        from common.problems import load_problems
        from common.sandbox import MINING_TIMEOUT, SandboxPool
        from common.ssd import heldout_index, heldout_set
        cands = [{"key": r["key"], "text": r["samples"][0]["text"], "origin": "generated"} for r in generated]
        cands += seed_candidates(load_problems(s.pool_file)) if s.pool_file else []
        held = heldout_set([{"bench": b} for b in s.heldout])
        with SandboxPool(workers=ctx.options.workers, timeout=MINING_TIMEOUT) as pool:
            recs, counts = verify_problems(cands, pool, MiningConfig(), heldout_index(held["parts"]))
        probs = [pool_problem(r) for r in recs if r["verified"]]
        probs, n_old = fresh_only(probs, _round1_pool(round1)) if round1 else (probs, 0)
        train, val = split_pool(probs, s.val_fraction, args.pool_seed)
        write_jsonl_atomic(ctx.dir / "pool" / "train.jsonl", train)
        write_jsonl_atomic(ctx.dir / "pool" / "val.jsonl", val)
        return recs, {**counts, "heldout_sets": list(s.heldout), "heldout_n": held["n"],
                      "dropped_round1_repeats": n_old, "train": len(train), "val": len(val)}
    ctx.book.run("pool/verify", ctx.dir / "pool" / "verified.jsonl", verify)
    info = ctx.book.done("pool/verify")["counts"]
    if not info["train"]:
        raise InputError("the verified pool has no training prompt; raise --pool-size or give a --pool-file")
    tasks, dataset = load_tasks("problems", limit=s.limit, path=str(ctx.dir / "pool" / "train.jsonl"))
    files = {k: {"path": str(ctx.dir / "pool" / f"{k}.jsonl"), "sha256": file_sha256(ctx.dir / "pool" / f"{k}.jsonl")}
             for k in ("train", "val")}
    return tasks, {**info, "files": files, "sampled_prompts": len(tasks), "dataset": dataset}


def _round1_pool(round1: dict) -> list[dict]:
    from common.results import read_jsonl
    rdir = Path(round1["run_dir"]) / "pool"
    return [r for k in ("train", "val") for r in read_jsonl(rdir / f"{k}.jsonl", "round-1 pool")]


def sample_stage(ctx: Ctx, s: SSDSettings, tasks: list[dict], dataset: dict) -> list[dict]:
    """3. SSD samples of the frozen sampler, scored against each prompt's asserts (samples/)."""
    from common.evaluation import EvalJob, EvalModel, evaluate_code, load_scored_samples
    from common.prompts import get_protocol
    run = ctx.dir / "samples"

    def sample():
        job = EvalJob(run, tasks, dataset, get_protocol(s.protocol), s.sampling,
                      EvalModel(ctx.slot.info(ctx.sampler), lambda: ctx.slot.get(ctx.sampler)),
                      ctx.invocation, ctx.options)
        res = evaluate_code(job)
        return [], {"samples": res["metrics"]["n_samples"], "passed": res["metrics"]["n_passed_samples"],
                    "generation_s": res["timings"]["generation_s"], "scoring_s": res["timings"]["scoring_s"]}
    ctx.book.run("sample", None, sample)
    return load_scored_samples(run / "samples.jsonl")


def _sha(path: Path) -> str:
    from common.results import file_sha256
    return file_sha256(path)


def filter_stage(ctx: Ctx, s: SSDSettings, arm: str, samples: list[dict], tasks: list[dict]) -> dict:
    """4. One arm's training records (arms/<arm>/train.jsonl) with its filter counts and mix."""
    from common.prompts import get_protocol
    from common.ssd_data import anchor_records, minimal_filter, mix, records, verifier_filter
    by_id = {t["task_id"]: t for t in tasks}
    path = ctx.dir / "arms" / arm / "train.jsonl"

    def build():
        proto = get_protocol(s.protocol)
        rows = [r for r in samples if r["task_id"] in by_id]
        kept, counts = (minimal_filter(rows, by_id, s.drop_shortest) if arm == "minimal"
                        else verifier_filter(rows, by_id))
        recs, mixed = mix(records(kept, by_id, proto, arm), anchor_records(tasks, proto), s.mix_ratio,
                          ctx.train_cfg.seed)
        return recs, {"arm": arm, "filter": counts, "mix": mixed, "records": len(recs)}
    ctx.book.run(f"filter/{arm}", path, build)
    return {**ctx.book.done(f"filter/{arm}")["counts"], "train_file": str(path)}


def train_stage(ctx: Ctx, arm: str) -> dict:
    """5. LoRA from the base weights on one arm's records (arms/<arm>/adapter/)."""
    from common.compare import summarize_training
    from common.lora import train_adapter
    from common.rundir import read_rows
    path = ctx.dir / "arms" / arm / "train.jsonl"
    recs = read_rows(path)
    if not recs:
        return {"trained": False, "reason": f"the {arm} arm kept no sample"}
    ctx.slot.release()
    info = {"path": str(path), "sha256": _sha(path), "count": len(recs), "arm": arm}
    t0 = time.time()
    tres = train_adapter(ctx.slot.resolved, recs, info, ctx.train_cfg, ctx.dir / "arms" / arm / "adapter",
                         ctx.invocation, ctx.options, extra={"arm": arm})
    return {**summarize_training(tres), "trained": True, "adapter": str(ctx.dir / "arms" / arm / "adapter"),
            "timings": tres.get("timings"), "seconds_this_invocation": round(time.time() - t0, 1)}


def write_result(ctx: Ctx, s: SSDSettings, config: dict, pool_info: dict, arms: dict, t0: float) -> int:
    from common.results import write_json_atomic
    for arm, a in arms.items():
        a["adapter"] = a["training"]["adapter"] if a["training"].get("trained") else None
    result = {**ctx.invocation.provenance(), "round": s.round, "config": config, "thresholds": ctx.thresholds,
              "pool": pool_info,
              "sampling": s.sampling.to_dict(), "protocol": s.protocol, "stages": ctx.book.data,
              "arms": arms, "timings": {"total_s_this_invocation": round(time.time() - t0, 1)}}
    write_json_atomic(ctx.dir / "result.json", result)
    print(f"\nSSD round {s.round}: {pool_info['train']} train / {pool_info['val']} val prompts "
          f"({pool_info['contaminated']} dropped as held-out overlap)")
    for arm, a in arms.items():
        extra = (f", acceptance {a['filter']['acceptance_rate']:.1%}" if arm == "verifier" and
                 a["filter"].get("acceptance_rate") is not None else "")
        print(f"  arm {arm}: {a['records']} records{extra}; adapter {a['adapter']}")
    print(f"  results: {ctx.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
