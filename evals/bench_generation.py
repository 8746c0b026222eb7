"""Generation throughput: the CPU engine against naive transformers ``generate``, same outputs.

Claim measured (project issue, not a paper row): on 2 CPU cores the ``hf`` backend (continuous
batching + shared prefill + exact prompt-lookup speculation, :mod:`common.engine`) is several
times faster than batch-1 ``generate`` while greedy outputs stay the same.

Workloads, embedded Qwen2.5-Coder-0.5B-Instruct, official Qwen protocol, max 512 new tokens:
  (a) greedy, the first 64 HumanEval prompts;
  (b) sampling, the first 16 HumanEval prompts x n=8, T=0.8, top-p 0.95, seed 0.
Reported per backend and workload: useful tokens (generated tokens up to the stop), wall time,
tokens/s, peak resident memory of the process during the phase; for (a) the fraction of
completions identical to the baseline's and both pass@1 with a paired comparison.

Full command (~45 min on 2 cores, the naive baseline dominates):
    python evals/bench_generation.py \
        --full-run results/eval_humaneval_qwen2.5-coder-0.5b-instruct_qwen-official_greedy
``--full-run`` copies the measured generation time of a finished full greedy HumanEval run
(164 tasks, qwen-official) into the result with the 10-minute target; it is not re-measured.
Quick command (~5 min):
    python evals/bench_generation.py --prompts-a 8 --prompts-b 2 --run-name bench_generation_quick

The naive baseline can be measured on a prefix of a workload (``--baseline-prompts-a/-b``):
tokens/s is a rate, and the result states how many prompts each backend ran. The per-prompt
outputs of every backend are kept in ``results/<run>/<backend>_<workload>.jsonl``; the naive
baseline resumes per prompt (its timings are per prompt), the engine run is timed whole.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--prompts-a", type=int, default=64, help="HumanEval prompts in workload (a) (default 64)")
    p.add_argument("--prompts-b", type=int, default=16, help="HumanEval prompts in workload (b) (default 16)")
    p.add_argument("--n-b", type=int, default=8, help="samples per prompt in workload (b) (default 8)")
    p.add_argument("--baseline-prompts-a", type=int, default=None,
                   help="run the naive baseline on only the first N prompts of (a) (default: all)")
    p.add_argument("--baseline-prompts-b", type=int, default=None,
                   help="run the naive baseline on only the first N prompts of (b) (default: all)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="generation budget (default 512)")
    p.add_argument("--workloads", default="a,b", help="which workloads to run (default a,b)")
    p.add_argument("--run-name", default="bench_generation", help="results/<run-name>/ (default bench_generation)")
    p.add_argument("--out-dir", default=None, help="results root (default ./results)")
    p.add_argument("--full-run", default=None,
                   help="a finished greedy qwen-official HumanEval evaluation run (results/<run>) whose measured "
                        "generation time is copied into the result as the full-run figure (not re-measured here)")
    add_model_args(p, adapter=False)
    return p


class PeakRSS:
    """Track the peak resident memory of this process while a block runs."""

    def __init__(self, interval: float = 0.2):
        import psutil
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._stop = threading.Event()
        self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _sample(c) -> dict:
    """What the per-prompt files keep of a completion."""
    return {"text": c.text, "token_ids": c.token_ids, "finish_reason": c.finish_reason}


def run_engine(llm, prompts, params):
    with PeakRSS() as mem:
        t0 = time.time()
        out = llm.generate(prompts, params, desc="engine")
        wall = time.time() - t0
    return out, wall, mem.peak


def run_naive(llm, prompts, params, log):
    """Batch-1 transformers generate, resumable per prompt through ``log`` (a JsonlLog)."""
    done = {r["prompt_index"]: r for r in log.rows}
    for i, p in enumerate(prompts):
        if i in done:
            continue
        with PeakRSS() as mem:
            t0 = time.time()
            # the prompt index is part of each sample's seed, so pass the real index
            comps = llm.generate_naive_one(p, params, i)
            wall = time.time() - t0
        row = {"prompt_index": i, "wall_s": wall, "peak_rss": mem.peak, "samples": [_sample(c) for c in comps]}
        log.append(row)
        done[i] = row
        print(f"  naive prompt {i + 1}/{len(prompts)}: {sum(len(c.token_ids) for c in comps)} tokens "
              f"in {wall:.1f}s", flush=True)
    return [done[i] for i in range(len(prompts))]


FULL_RUN_TARGET_S = 600.0  # the line: a full greedy HumanEval run under 10 minutes


def full_run_timing(run_dir) -> dict:
    """The measured time of a finished full greedy HumanEval evaluation, read from its result.json.

    Raises InputError unless the run is a greedy, qwen-official, 164-task HumanEval evaluation with
    recorded timings. Prefers the generation time summed over all invocations (resumed runs) and
    says how many tasks, if any, were generated without a timer.
    """
    import json
    from pathlib import Path
    from common.results import InputError
    path = Path(run_dir) / "result.json"
    if not path.is_file():
        raise InputError(f"--full-run: no result.json in {run_dir}")
    res = json.loads(path.read_text())
    samp, timings = res.get("sampling") or {}, res.get("timings") or {}
    n_tasks = (res.get("dataset") or {}).get("n_tasks") or (res.get("metrics") or {}).get("n_tasks")
    proto = (res.get("protocol") or {}).get("name")
    if samp.get("temperature") not in (0, 0.0) or samp.get("n", 1) != 1:
        raise InputError(f"--full-run: {run_dir} is not a greedy run (sampling {samp})")
    if proto != "qwen-official" or n_tasks != 164:
        raise InputError(f"--full-run: {run_dir} must be qwen-official on all 164 tasks (got {proto}, {n_tasks})")
    gen = timings.get("generation_s_all_invocations", timings.get("generation_s"))
    if gen is None:
        raise InputError(f"--full-run: {run_dir} has no generation time recorded")
    total = gen + float(timings.get("scoring_s", 0.0))
    return {"run": str(Path(run_dir).name), "generation_s": gen, "scoring_s": timings.get("scoring_s"),
            "total_s": round(total, 1), "tasks_generated_untimed": timings.get("tasks_generated_untimed", 0),
            "max_batch": (res.get("args") or {}).get("max_batch"), "git_commit": (res.get("git") or {}).get("commit"),
            "pass_at_1": ((res.get("metrics") or {}).get("pass_at_k") or {}).get("pass@1", {}).get("mean"),
            "mean_new_tokens": (res.get("metrics") or {}).get("mean_new_tokens"),
            "engine_last_invocation": res.get("engine_this_invocation"), "target_s": FULL_RUN_TARGET_S,
            "under_target": total < FULL_RUN_TARGET_S}


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.models import resolve_model
    from common.prompts import get_protocol
    from common.results import provenance, results_root, write_json_atomic
    from common.runtime import ModelConfig, model_info
    from common.sampling import LLM

    cfg = ModelConfig.from_args(args)
    out_dir = Path(args.out_dir or results_root()) / args.run_name
    out_dir.mkdir(parents=True, exist_ok=True)
    proto = get_protocol("qwen-official")
    resolved = resolve_model(cfg.model)
    llm = LLM(resolved, backend="hf", dtype=cfg.dtype, max_batch=cfg.max_batch, spec_max=cfg.spec_max)
    tasks, dataset = load_tasks("humaneval")
    workloads = workloads_from_args(args, proto.stop)
    result = {**provenance(__file__, argv if argv is not None else sys.argv[1:], vars(args)),
              "model": model_info(resolved, cfg), "protocol": proto.to_dict(), "dataset": dataset,
              "engine": {"max_batch": cfg.max_batch, "spec_max": cfg.spec_max, "dtype": cfg.dtype},
              "baseline": "transformers generate, batch 1, one sample at a time, same dtype", "workloads": {}}
    if args.full_run:
        result["full_humaneval_greedy"] = full_run_timing(args.full_run)
    for name in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        w = workloads[name]
        result["workloads"][name] = run_workload(llm, proto, tasks[: w.prompts], w, out_dir)
        result["engine"].update(llm.last_engine)
        write_json_atomic(out_dir / "result.json", result)
    print(f"written {out_dir / 'result.json'}")
    return 0


@dataclass(frozen=True)
class Workload:
    name: str
    prompts: int                   # the first N HumanEval prompts
    baseline_prompts: int | None   # the naive baseline runs the first N of them (None: all)
    params: object                 # common.sampling.SamplingParams


def workloads_from_args(args, stop) -> dict[str, Workload]:
    """(a) greedy and (b) sampling, as the module docstring describes them."""
    from common.sampling import SamplingParams
    return {"a": Workload("a", args.prompts_a, args.baseline_prompts_a,
                          SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens, stop=stop)),
            "b": Workload("b", args.prompts_b, args.baseline_prompts_b,
                          SamplingParams(n=args.n_b, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens,
                                         stop=stop, seed=0))}


def run_workload(llm, proto, tasks: list[dict], w: Workload, out_dir) -> dict:
    """The engine on every prompt of ``tasks`` (timed whole, redone on every invocation), then
    the naive baseline on the first ``w.baseline_prompts`` (resumed per prompt); their rates,
    memory and, greedy, how their outputs compare."""
    import collections
    from common.results import JsonlLog
    from common.runtime import gemm_probe
    prompts = [proto.render(t, llm) for t in tasks]
    params = w.params
    n_base = min(w.baseline_prompts or len(prompts), len(prompts))
    print(f"workload ({w.name}): {len(prompts)} prompts x n={params.n}; engine first", flush=True)
    probe_before = gemm_probe()
    eng_out, eng_wall, eng_peak = run_engine(llm, prompts, params)
    probe_after = gemm_probe()
    eng_tokens = sum(c.n_tokens for comps in eng_out for c in comps)
    (out_dir / f"engine_{w.name}.jsonl").unlink(missing_ok=True)  # the engine run's file is rewritten
    with JsonlLog(out_dir / f"engine_{w.name}.jsonl") as lg:
        for i, comps in enumerate(eng_out):
            lg.append({"prompt_index": i, "samples": [_sample(c) for c in comps]})
    print(f"  engine: {eng_tokens} tokens in {eng_wall:.1f}s = {eng_tokens / eng_wall:.1f} tok/s", flush=True)
    with JsonlLog(out_dir / f"naive_{w.name}.jsonl") as lg:
        naive_rows = run_naive(llm, prompts[:n_base], params, lg)
    nv_tokens = sum(len(s["token_ids"]) for r in naive_rows for s in r["samples"])
    nv_wall = sum(r["wall_s"] for r in naive_rows)
    eng_rate, nv_rate = eng_tokens / eng_wall, nv_tokens / nv_wall
    wres = {
        "prompts": len(prompts), "n": params.n, "sampling": params.to_dict(),
        "engine": {"prompts": len(prompts), "useful_tokens": eng_tokens, "wall_s": round(eng_wall, 1),
                   "tokens_per_s": round(eng_rate, 2), "peak_rss_gb": round(eng_peak / 2**30, 2),
                   "finish_reasons": dict(collections.Counter(c.finish_reason for cs in eng_out for c in cs)),
                   "breakdown": llm.last_engine_stats,
                   "machine_gemm_gflops": {"before": probe_before["gflops"], "after": probe_after["gflops"],
                                           "probe": probe_before}},
        "naive": {"prompts": n_base, "useful_tokens": nv_tokens, "wall_s": round(nv_wall, 1),
                  "tokens_per_s": round(nv_rate, 2),
                  "peak_rss_gb": round(max(r["peak_rss"] for r in naive_rows) / 2**30, 2)},
        "speedup_tokens_per_s": round(eng_rate / nv_rate, 2),
    }
    if params.temperature == 0:
        wres.update(compare_greedy(proto, tasks[:n_base], [o[0].text for o in eng_out[:n_base]],
                                   [o[0].token_ids for o in eng_out[:n_base]], naive_rows))
    print(f"  naive: {nv_tokens} tokens in {nv_wall:.1f}s = {nv_rate:.1f} tok/s; speedup "
          f"{wres['speedup_tokens_per_s']}x", flush=True)
    return wres


def compare_greedy(proto, tasks: list[dict], eng_texts: list[str], eng_ids: list[list[int]],
                   naive_rows: list[dict]) -> dict:
    """Greedy workload, per prompt of ``tasks``: is the engine's completion token-for-token the
    baseline's, and pass@1 of both (scored in the sandbox) with their paired difference."""
    from common.metrics import paired_delta, wilson_interval
    from common.sandbox_humaneval import score_humaneval
    n = len(tasks)
    same = [eng_ids[i] == naive_rows[i]["samples"][0]["token_ids"] for i in range(n)]
    out = {"identical_to_baseline": {"n": n, "identical": sum(same), "fraction": sum(same) / n,
                                     "different_prompts": [tasks[i]["task_id"] for i, s in enumerate(same) if not s]}}
    eng_samples = [{"task_id": t["task_id"], "completion": proto.to_completion(t, eng_texts[i])[0]}
                   for i, t in enumerate(tasks)]
    nv_samples = [{"task_id": t["task_id"], "completion": proto.to_completion(t, naive_rows[i]["samples"][0]["text"])[0]}
                  for i, t in enumerate(tasks)]
    ver = score_humaneval({t["task_id"]: t for t in tasks}, eng_samples + nv_samples)
    e_pass = {s["task_id"]: float(v.passed) for s, v in zip(eng_samples, ver[:n])}
    n_pass = {s["task_id"]: float(v.passed) for s, v in zip(nv_samples, ver[n:])}
    out["pass_at_1"] = {"engine": sum(e_pass.values()) / n, "naive": sum(n_pass.values()) / n,
                        "engine_ci": wilson_interval(int(sum(e_pass.values())), n),
                        "naive_ci": wilson_interval(int(sum(n_pass.values())), n),
                        "paired_delta_engine_minus_naive": paired_delta(n_pass, e_pass)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
