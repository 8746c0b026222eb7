"""Generation backends side by side: the default backend against the fp32 engine, llama-server
and naive ``generate``, same workloads, one invocation (project issue 15, acceptance line 1).

Claim measured (not a paper row): on 2 CPU cores the default backend (``--default``, the int8
engine unless told otherwise) finishes workload (a) at least 1.25x and workload (c) at least 1.5x
as fast as the faster of the fp32 engine (``hf``) and llama-server in its best configuration,
with pass@1 inside the fp32 run's 95% interval and the paired difference stated.

Backends (``--backends``, timed in the order given, one loaded at a time):
  hf        the CPU engine in float32 (oneDNN linear layers): the reference every other
            backend's completions are compared with (paired pass@1, identical completions);
  int8      the same engine on int8 linear layers (common.engine_step.Int8Linears);
  llamacpp  llama-server on loopback, same GGUF file; by default its best configuration
            measured (REPRODUCE.md section 3): 64 slots, 1,536 context tokens per slot,
            ``--spec-type ngram-simple`` (llama.cpp's prompt-lookup speculation);
  naive     transformers ``generate``, batch 1, on the first ``--naive-prompts`` of each workload.
Workloads, embedded Qwen2.5-Coder-0.5B-Instruct, HumanEval under qwen-official (stop "\\n```"),
512 new tokens:
  (a) greedy, all 164 prompts;
  (b) the first 16 prompts x n=8, T=0.8, top-p 0.95;
  (c) all 164 prompts x n=10, T=0.8, top-p 0.95 (the test-time-sampling workload).
Per backend and workload: generated tokens, wall time of the generation call, tokens/s, peak
resident memory of this process (for llamacpp also the server process's), the GEMM probe
(common.runtime.gemm_probe) before and after, pass@1 (sandbox; mean over samples when sampled)
and pass@k for n=10, the paired difference to the hf run with its 95% interval and n, and how many
completions (text cut at the stop) are identical to the hf run's. ``acceptance`` holds the
speed ratios: wall of the faster of hf and llamacpp over the default's wall, on (a) and (c).

Full command (about 4.5 to 5 hours on 2 cores; (c) dominates):
    python evals/bench_generation.py --backends int8,hf,llamacpp,naive --naive-prompts a=16,b=2,c=1
Quick command (about 10 minutes):
    python evals/bench_generation.py --limit 4 --max-new-tokens 64 --naive-prompts 1 \\
        --run-name bench_generation_quick

Writes results/<run-name>/result.json (provenance, model sha256, protocol, stops, max tokens,
seeds, each backend's settings, per-phase measurements and quality) and
results/<run-name>/<backend>_<workload>.jsonl (one row per sample: raw text, extracted
completion, tokens, finish reason, sandbox verdict). Resumable per phase: a phase (one backend
on one workload) is timed whole, so a finished phase is never re-run and an interrupted one
restarts; scoring is a stage of its own, after the workload's generation phases.

Deviations: naive ``generate`` runs on a prefix of each workload (a rate, its n stated); its
paired comparison uses the hf run on the same prefix. Completions count as identical when the
generated text (cut at the stop string) is equal, whatever the token ids each backend reports.
"""
from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from dataclasses import dataclass, field

REFERENCE = "hf"                        # the fp32 engine: the paired comparisons' reference
RIVALS = ("hf", "llamacpp")             # the default backend must beat the faster of these
TARGETS = {"a": 1.25, "c": 1.5}         # issue 15, acceptance line 1
BENCH_BACKENDS = ("hf", "int8", "llamacpp", "naive")
BEST_LLAMACPP = {"server_slots": 64, "server_ctx": 1536, "server_args": "--spec-type ngram-simple"}
RUN_NAME = "bench_generation"


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_run_args
    from common.models import DEFAULT_MODEL, EMBEDDED
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    g = p.add_argument_group("benchmark")
    g.add_argument("--backends", default="int8,hf,llamacpp,naive",
                   help=f"backends to time, in this order, comma-separated, from {', '.join(BENCH_BACKENDS)}; "
                        f"must include hf, the reference (default int8,hf,llamacpp,naive)")
    g.add_argument("--default", default="int8", choices=BENCH_BACKENDS,
                   help="the backend the acceptance ratios are about (default int8)")
    g.add_argument("--workloads", default="a,b,c", help="workloads to run: a, b, c (default a,b,c)")
    g.add_argument("--naive-prompts", default="a=16,b=2,c=1",
                   help="naive generate runs the first N prompts of each workload: one number for all, or "
                        "per workload as a=16,b=2,c=1 (default a=16,b=2,c=1)")
    g.add_argument("--max-new-tokens", type=int, default=512, help="generation budget per sample (default 512)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampled workloads (b), (c) (default 0)")
    m = p.add_argument_group("model and backend settings (recorded in result.json)")
    m.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"embedded alias ({', '.join(EMBEDDED)}) or .gguf file; llamacpp needs a GGUF "
                        f"(default {DEFAULT_MODEL})")
    m.add_argument("--max-batch", type=int, default=128, help="hf and int8 engine: rows decoded together (default 128)")
    m.add_argument("--spec-max", type=int, default=8,
                   help="hf and int8 engine: longest prompt-lookup draft per row and step (default 8)")
    best = "the best configuration measured"
    m.add_argument("--server-slots", type=int, default=BEST_LLAMACPP["server_slots"],
                   help=f"llamacpp: llama-server's parallel slots, and requests in flight (default 64: {best})")
    m.add_argument("--server-ctx", type=int, default=BEST_LLAMACPP["server_ctx"],
                   help=f"llamacpp: context tokens per slot, prompt plus completion (default 1536: {best})")
    m.add_argument("--server-args", default=BEST_LLAMACPP["server_args"],
                   help=f"llamacpp: extra llama-server flags (default '--spec-type ngram-simple': {best})")
    m.add_argument("--server-timeout", type=float, default=3600.0,
                   help="llamacpp: seconds one request may wait for its sample; with 64 slots on 2 cores a "
                        "512-token sample takes up to ~10 min (default 3600)")
    g.add_argument("--probe-seconds", type=float, default=1.0,
                   help="length of the machine-speed probe before and after each phase (default 1.0)")
    add_run_args(p)
    p.set_defaults(run_name=RUN_NAME)
    for a in p._actions:
        if a.dest == "run_name":
            a.help = f"results/<run-name>/ (default {RUN_NAME})"
        if a.dest == "limit":
            a.help = "shrink every workload to its first N prompts (quick runs)"
    return p


@dataclass(frozen=True)
class BenchConfig:
    """The flags, checked: which backends and workloads, and each backend's settings."""
    model: str
    backends: tuple[str, ...]
    default: str
    workloads: tuple[str, ...]
    naive_prompts: dict
    limit: int | None = None
    max_new_tokens: int = 512
    seed: int = 0
    probe_seconds: float = 1.0
    engine: dict = field(default_factory=dict)      # max_batch, spec_max
    server: dict = field(default_factory=dict)      # server_slots, server_ctx, server_args, server_timeout

    @classmethod
    def from_args(cls, args) -> "BenchConfig":
        from common.results import InputError
        backends = tuple(x.strip() for x in args.backends.split(",") if x.strip())
        bad = [b for b in backends if b not in BENCH_BACKENDS]
        if bad or not backends or len(set(backends)) != len(backends):
            raise InputError(f"--backends {args.backends!r}: name each of {', '.join(BENCH_BACKENDS)} at most once")
        if REFERENCE not in backends:
            raise InputError("--backends must include hf: the fp32 engine is the reference of every comparison")
        if args.default not in backends:
            raise InputError(f"--default {args.default} is not among --backends {args.backends}; add it")
        workloads = tuple(x.strip() for x in args.workloads.split(",") if x.strip())
        if not workloads or any(w not in "abc" or len(w) != 1 for w in workloads) or len(set(workloads)) != len(workloads):
            raise InputError(f"--workloads {args.workloads!r}: name each of a, b, c at most once")
        if args.limit is not None and args.limit < 1 or args.max_new_tokens < 1:
            raise InputError("--limit and --max-new-tokens must be >= 1")
        return cls(model=args.model, backends=backends, default=args.default, workloads=workloads,
                   naive_prompts=parse_naive_prompts(args.naive_prompts), limit=args.limit,
                   max_new_tokens=args.max_new_tokens, seed=args.seed,
                   probe_seconds=args.probe_seconds, engine={"max_batch": args.max_batch, "spec_max": args.spec_max},
                   server={k: getattr(args, k) for k in (*BEST_LLAMACPP, "server_timeout")})


def parse_naive_prompts(text: str) -> dict[str, int]:
    """``"16"`` -> 16 prompts on every workload; ``"a=16,b=2,c=1"`` -> per workload (a workload
    left out gets 0: naive does not run on it)."""
    from common.results import InputError
    text = str(text).strip()
    try:
        if "=" not in text:
            n = int(text)
            out = {w: n for w in "abc"}
        else:
            out = {w: 0 for w in "abc"}
            for part in filter(None, (x.strip() for x in text.split(","))):
                w, _, n = part.partition("=")
                if w.strip() not in out:
                    raise ValueError(w)
                out[w.strip()] = int(n)
    except ValueError:
        raise InputError(f"--naive-prompts {text!r}: give a number, or a=N,b=N,c=N") from None
    if any(n < 0 for n in out.values()):
        raise InputError(f"--naive-prompts {text!r}: counts must be >= 0")
    return out


# ---- workloads --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    prompts: int       # the first N HumanEval prompts
    params: object     # common.sampling.SamplingParams

    def record(self) -> dict:
        return {"prompts": self.prompts, "n": self.params.n, "sampling": self.params.to_dict()}


def workload_defs(bc: BenchConfig, stop: tuple, n_tasks: int) -> dict[str, Workload]:
    """(a), (b), (c) as the module docstring describes them, shrunk by ``--limit``."""
    from common.sampling import SamplingParams
    cap = lambda n: min(n, n_tasks, bc.limit or n)
    sampled = dict(temperature=0.8, top_p=0.95, max_new_tokens=bc.max_new_tokens, stop=stop, seed=bc.seed)
    return {"a": Workload("a", cap(164), SamplingParams(n=1, temperature=0.0, max_new_tokens=bc.max_new_tokens,
                                                         stop=stop, seed=bc.seed)),
            "b": Workload("b", cap(16), SamplingParams(n=8, **sampled)),
            "c": Workload("c", cap(164), SamplingParams(n=10, **sampled))}


def backend_settings(name: str, bc: BenchConfig) -> dict:
    """What a phase records (and checks on resume) about the backend that ran it."""
    if name in ("hf", "int8"):
        return {"backend": name, "dtype": "float32", **bc.engine}
    if name == "llamacpp":
        return {"backend": name, "slots": bc.server["server_slots"], "ctx_per_slot": bc.server["server_ctx"],
                "args": bc.server["server_args"]}
    return {"backend": name, "dtype": "float32", "how": "transformers generate, batch 1, one sample at a time"}


def model_config(name: str, bc: BenchConfig):
    from common.runtime import ModelConfig
    return ModelConfig(model=bc.model, backend=name, dtype="float32", **bc.engine, **bc.server)


# ---- one phase: a backend on a workload -------------------------------------------------------

class PeakRSS:
    """Peak resident memory of some processes (label -> pid) while a block runs, sampled."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2):
        import psutil
        self.procs = {k: psutil.Process(p) for k, p in pids.items()}
        self.interval = interval
        self.peak = {k: 0 for k in pids}

    def _sample(self):
        import psutil
        for k, p in self.procs.items():
            try:
                self.peak[k] = max(self.peak[k], p.memory_info().rss)
            except psutil.Error:   # a server that died: its peak so far stands
                pass

    def _watch(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._stop = threading.Event()
        self._sample()
        self.start = dict(self.peak)
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()


def gb(nbytes: int) -> float:
    return round(nbytes / 2**30, 2)


def generate_phase(resolved, name: str, bc: BenchConfig, prompts_of, w: Workload, n_prompts: int,
                   progress: bool = True):
    """Load backend ``name``, generate ``w`` on its first ``n_prompts`` tasks (timed whole,
    probed before and after), stop the backend; returns (completions per prompt, measurement)."""
    import collections
    from common.runtime import gemm_probe
    from common.sampling import LLM
    t0 = time.time()
    llm = LLM(resolved, model_config(name, bc))
    try:
        prompts = prompts_of(llm)[:n_prompts]
        load_s = time.time() - t0
        pids = {"process": os.getpid(), **({"server": llm.server.proc.pid} if llm.server else {})}
        probe_before = gemm_probe(bc.probe_seconds)
        with PeakRSS(pids) as mem:
            t1 = time.time()
            out = llm.generate(prompts, w.params, desc=f"{name} ({w.name})", seed_keys=list(range(n_prompts)),
                               progress=progress)
            wall = time.time() - t1
        probe_after = gemm_probe(bc.probe_seconds)
        engine = ({**llm.last_engine, "breakdown": llm.last_engine_stats}
                  if getattr(llm, "last_engine_stats", None) else None)
    finally:
        llm.close()
        del llm
        gc.collect()
    tokens = sum(c.n_tokens for comps in out for c in comps)
    meas = {"settings": backend_settings(name, bc), "prompts": n_prompts, "samples": n_prompts * w.params.n,
            "generated_tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / max(wall, 1e-9), 2),
            "load_s": round(load_s, 1), "peak_rss_gb": {k: gb(v) for k, v in mem.peak.items()},
            "rss_at_start_gb": {k: gb(v) for k, v in mem.start.items()},
            "finish_reasons": dict(collections.Counter(c.finish_reason for cs in out for c in cs)),
            "machine_gemm_gflops": {"before": probe_before["gflops"], "after": probe_after["gflops"],
                                    "probe": probe_before},
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if engine:
        meas["engine"] = engine
    return out, meas


def sample_rows(proto, tasks: list[dict], out) -> list[dict]:
    """One row per sample: the raw text (cut at the stop), the extracted completion, tokens."""
    rows = []
    for task, comps in zip(tasks, out):
        for si, c in enumerate(comps):
            completion, how = proto.to_completion(task, c.text)
            rows.append({"task_id": task["task_id"], "sample_index": si, "raw": c.text, "completion": completion,
                         "extraction": how, "finish_reason": c.finish_reason, "n_tokens": c.n_tokens})
    return rows


def phase_prompts(name: str, bc: BenchConfig, w: Workload) -> int:
    return min(bc.naive_prompts[w.name], w.prompts) if name == "naive" else w.prompts


def run_phases(ctx: "Bench", w: Workload) -> None:
    """Every backend on workload ``w`` (skipping finished phases), then the scoring stages."""
    from common.evaluation import score_rows
    from common.results import InputError
    tasks = ctx.tasks[: w.prompts]
    prompts_of = lambda llm: [ctx.proto.render(t, llm) for t in tasks]
    for name in ctx.bc.backends:
        n = phase_prompts(name, ctx.bc, w)
        key = f"generate/{w.name}/{name}"
        done = ctx.book.done(key)
        want = {"settings": backend_settings(name, ctx.bc), "prompts": n}
        ran = {k: (done or {}).get("counts", {}).get(k) for k in want}
        if done and ran != want:
            raise InputError(f"{ctx.run_dir}: phase {key} ran with other settings ({ran}); "
                             f"pass another --run-name, or --overwrite to start again")
        if n == 0 or done:
            continue
        print(f"({w.name}) {name}: {n} prompts x n={w.params.n}", flush=True)

        def phase(name=name, n=n):
            out, meas = generate_phase(ctx.resolved, name, ctx.bc, prompts_of, w, n, ctx.options.progress)
            print(f"  {meas['generated_tokens']} tokens in {meas['wall_s']:.1f} s = {meas['tokens_per_s']:.1f} tok/s; "
                  f"probe {meas['machine_gemm_gflops']['before']} -> {meas['machine_gemm_gflops']['after']} GFLOPS",
                  flush=True)
            return sample_rows(ctx.proto, tasks[:n], out), meas
        ctx.book.run(key, ctx.run_dir / f"{name}_{w.name}.jsonl", phase)
    by_id = {t["task_id"]: t for t in tasks}
    for name in ctx.bc.backends:
        path = ctx.run_dir / f"{name}_{w.name}.jsonl"
        if not ctx.book.done(f"generate/{w.name}/{name}"):
            continue
        ctx.book.run(f"score/{w.name}/{name}", path,
                     lambda path=path: _score(by_id, path, ctx.bc, score_rows, ctx.options))


def _score(by_id, path, bc, score_rows, options):
    from common.rundir import read_rows
    rows, limits = score_rows(by_id, read_rows(path), options.workers, options.timeout, options.progress)
    return rows, {"samples": len(rows), "passed": sum(bool(r["passed"]) for r in rows), "sandbox": limits}


# ---- quality and speed ------------------------------------------------------------------------

def quality(rows: list[dict], ref_rows: list[dict], n: int, name: str) -> dict:
    """pass@k of one backend's scored rows (tasks it ran), and against the reference's rows on
    those tasks: the paired difference of per-task pass rates (95% interval, n) and how many
    samples have the same text."""
    from common.compare import compare
    from common.evaluation import summarise
    task_ids = list(dict.fromkeys(r["task_id"] for r in rows))
    out = {"tasks": len(task_ids), "samples": len(rows), "metrics": summarise(rows, task_ids, n)}
    if ref_rows is None or name == REFERENCE:
        return out
    ref = {(r["task_id"], r["sample_index"]): r for r in ref_rows}
    missing = [k for k in ((r["task_id"], r["sample_index"]) for r in rows) if k not in ref]
    if missing:
        return {**out, "vs_hf": f"not comparable: the hf run lacks {missing[:3]}"}
    same = [r["raw"] == ref[(r["task_id"], r["sample_index"])]["raw"] for r in rows]
    rate = lambda rs: {t: sum(bool(r["passed"]) for r in rs if r["task_id"] == t) /
                       sum(1 for r in rs if r["task_id"] == t) for t in task_ids}
    ref_on = [ref[(r["task_id"], r["sample_index"])] for r in rows]
    out["vs_hf"] = {"identical_samples": sum(same), "samples": len(same), "identical_fraction": sum(same) / len(same),
                    "tasks_with_a_different_sample": sorted({r["task_id"] for r, s in zip(rows, same) if not s}),
                    "pass_at_1_paired": compare(rate(ref_on), rate(rows), REFERENCE, name)}
    return out


def speed_ratios(runs: dict[str, dict[str, dict]], default: str, workloads=("a", "c")) -> dict:
    """Acceptance line 1: per workload, the wall time of the faster of the rivals (hf, llamacpp,
    whichever ran; the default itself excluded) over the default backend's wall, on the same
    prompts and sampling; the tokens/s ratio beside it (backends generate different numbers of
    tokens). ``runs``: workload -> backend -> {"wall_s", "tokens_per_s"} of full (not prefix) runs."""
    out = {}
    for w in workloads:
        got = runs.get(w) or {}
        rivals = {b: r for b, r in got.items() if b in RIVALS and b != default}
        if default not in got or not rivals:
            out[w] = {"status": f"not measured: needs {default} and one of {', '.join(RIVALS)} on ({w})"}
            continue
        missing = [b for b in RIVALS if b != default and b not in rivals]
        faster = min(rivals, key=lambda b: rivals[b]["wall_s"])
        mine, theirs = got[default], rivals[faster]
        ratio = theirs["wall_s"] / mine["wall_s"] if mine["wall_s"] > 0 else None
        rate = mine["tokens_per_s"] / theirs["tokens_per_s"] if theirs["tokens_per_s"] > 0 else None
        out[w] = {"default": default, "default_wall_s": mine["wall_s"], "faster_rival": faster,
                  "rival_wall_s": theirs["wall_s"], "ratio": None if ratio is None else round(ratio, 3),
                  "tokens_per_s_ratio": None if rate is None else round(rate, 3), "target": TARGETS.get(w),
                  "meets_target": ratio is not None and ratio >= TARGETS.get(w, 1.0),
                  "rivals_not_measured": missing}
    return out


# ---- the run ----------------------------------------------------------------------------------

@dataclass
class Bench:
    """What every stage of one invocation shares."""
    bc: BenchConfig
    resolved: object
    proto: object
    tasks: list
    dataset: dict
    workloads: dict
    run_dir: object
    book: object
    options: object


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    ctx = open_bench(args)
    for name in ctx.bc.workloads:
        run_phases(ctx, ctx.workloads[name])
        res = write_result(ctx, args, argv)
    for w, r in res["acceptance"]["speed"].items():
        print(f"({w}) {r}", flush=True)
    print(f"written {ctx.run_dir / 'result.json'}")
    return 0


def open_bench(args) -> Bench:
    """Flags checked, tasks and model resolved, the run directory locked and its stage book."""
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.cli import RunOptions
    from common.models import resolve_model
    from common.prompts import get_protocol
    from common.results import InputError, results_root
    from common.rundir import StageBook, prepare_run_dir
    bc = BenchConfig.from_args(args)
    if "llamacpp" in bc.backends:
        from common.server import gguf_path
        resolved = resolve_model(bc.model)
        gguf_path(resolved)   # InputError now, not after hours, for a model llama-server cannot run
    else:
        resolved = resolve_model(bc.model)
    proto = get_protocol("qwen-official")
    tasks, dataset = load_tasks("humaneval")
    workloads = workload_defs(bc, proto.stop, len(tasks))
    run_dir = Path(args.out_dir or results_root()) / args.run_name
    if (run_dir / "result.json").is_file() and not (run_dir / "config.json").is_file():
        raise InputError(f"{run_dir} holds a result of the earlier bench (no config.json); move it away "
                         f"(git rm -r it) or pass another --run-name")
    config = {"model": resolved.provenance(), "protocol": proto.to_dict(), "dataset_sha256": dataset.get("sha256"),
              "workloads": {k: w.record() for k, w in workloads.items()}}
    prepare_run_dir(run_dir, config, args.overwrite)
    return Bench(bc, resolved, proto, tasks, dataset, workloads, run_dir, StageBook(run_dir), RunOptions.from_args(args))


def recorded_backends(ctx: Bench) -> list[str]:
    """This invocation's backends, then every other backend with a finished phase in the run
    directory (an earlier invocation's), so result.json always describes the whole run."""
    done = {key.split("/")[2] for key in ctx.book.data if key.startswith("generate/")}
    return list(ctx.bc.backends) + [b for b in BENCH_BACKENDS if b in done and b not in ctx.bc.backends]


def workload_result(ctx: Bench, w: Workload) -> dict:
    """One workload's entry: its definition and, per backend that finished (in this invocation
    or an earlier one), the phase's measurement and (once scored) its quality against hf."""
    from common.rundir import read_rows
    out = {**w.record(), "backends": {}}
    scored = {b: read_rows(ctx.run_dir / f"{b}_{w.name}.jsonl") for b in recorded_backends(ctx)
              if ctx.book.done(f"score/{w.name}/{b}")}
    for b in recorded_backends(ctx):
        gen = ctx.book.done(f"generate/{w.name}/{b}")
        if not gen:
            continue
        entry = {"generation": gen["counts"], "samples_file": f"{b}_{w.name}.jsonl", "full_workload":
                 gen["counts"]["prompts"] == w.prompts}
        if b in scored:
            entry["quality"] = quality(scored[b], scored.get(REFERENCE), w.params.n, b)
        out["backends"][b] = entry
    return out


def acceptance(ctx: Bench, workloads: dict) -> dict:
    """Speed ratios on (a) and (c), and whether the default's greedy pass@1 lies inside the
    fp32 run's 95% interval on (a)."""
    runs = {w: {b: {k: e["generation"][k] for k in ("wall_s", "tokens_per_s")}
                for b, e in d["backends"].items() if e["full_workload"]} for w, d in workloads.items()}
    out = {"default": ctx.bc.default, "rivals": list(RIVALS), "speed": speed_ratios(runs, ctx.bc.default),
           "ratio_is": "wall of the faster rival / wall of the default, same prompts and sampling"}
    a = workloads.get("a", {}).get("backends", {})
    q_def, q_ref = (a.get(ctx.bc.default) or {}).get("quality"), (a.get(REFERENCE) or {}).get("quality")
    if q_def and q_ref:
        p_def = q_def["metrics"]["pass_at_k"]["pass@1"]["mean"]
        lo, hi = q_ref["metrics"]["pass_at_k"]["pass@1"]["ci"]
        out["pass_at_1_a"] = {"default": p_def, "hf": q_ref["metrics"]["pass_at_k"]["pass@1"]["mean"],
                              "hf_ci": [lo, hi], "inside_hf_interval": lo <= p_def <= hi,
                              "paired": (q_def.get("vs_hf") or {}).get("pass_at_1_paired")}
    return out


def write_result(ctx: Bench, args, argv) -> dict:
    from dataclasses import replace

    from common.results import provenance, write_json_atomic
    from common.runtime import llama_server_info
    workloads = {w: workload_result(ctx, ctx.workloads[w]) for w in ctx.bc.workloads}
    backends = {b: backend_settings(b, ctx.bc) for b in ctx.bc.backends}
    for b in recorded_backends(ctx)[len(backends):]:   # as an earlier invocation's phases recorded them
        backends[b] = dict(next(d["backends"][b]["generation"]["settings"] for d in workloads.values()
                                if b in d["backends"]))   # a copy: the server record below is not a phase's
    if "llamacpp" in backends:   # the server as the phases ran it (an earlier invocation's flags may differ)
        s = backends["llamacpp"]
        backends["llamacpp"]["server"] = llama_server_info(replace(
            model_config("llamacpp", ctx.bc), server_slots=s["slots"], server_ctx=s["ctx_per_slot"], server_args=s["args"]))
    res = {**provenance(__file__, argv, vars(args)), "model": ctx.resolved.provenance(),
           "protocol": ctx.proto.to_dict(), "dataset": ctx.dataset, "max_new_tokens": ctx.bc.max_new_tokens,
           "seed": ctx.bc.seed, "seeds": "sample s of prompt i draws from common.engine_tokens.sample_seed(seed, i, s)",
           "reference_backend": REFERENCE, "backends": backends, "workloads": workloads,
           "acceptance": acceptance(ctx, workloads)}
    write_json_atomic(ctx.run_dir / "result.json", res)
    return res


if __name__ == "__main__":
    raise SystemExit(main())
