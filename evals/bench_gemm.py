"""GEMM throughput of the model's linear layers: torch's default CPU path vs oneDNN prepacked.

Why this exists: the CPU engine (:mod:`common.engine`) spends ~80% of a decode step in the
linear layers, and which GEMM library runs them decides its speed. This measures, for the
shapes of the embedded model's layers at the row counts the engine feeds them (a decode step
of 1-128 rows, a prompt prefill of ~200), float32 GFLOPS of

* ``torch``: ``torch.nn.functional.linear`` as transformers calls it (MKL sgemm on x86 wheels);
* ``onednn``: ``torch.ops.mkldnn._linear_pointwise`` on a weight prepacked once with
  ``torch.ops.mkldnn._reorder_linear_weight`` (what the engine uses, :class:`common.engine_step.OneDNNLinears`);

and the largest absolute difference between the two outputs (same mathematics, different
summation order). The shapes come from the model's config, no weights are loaded.

Command (about 1 minute on 2 cores; run it on an otherwise idle machine):
    python evals/bench_gemm.py
Writes results/<run-name>/result.json (default results/bench_gemm/).
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct",
                   help="model whose layer shapes are measured (its config only; default the embedded 0.5B)")
    p.add_argument("--rows", default="1,16,32,64,128,200",
                   help="comma-separated row counts (tokens per GEMM) to measure (default 1,16,32,64,128,200)")
    p.add_argument("--min-seconds", type=float, default=0.3,
                   help="time each (shape, rows, backend) for at least this long (default 0.3)")
    p.add_argument("--run-name", default="bench_gemm", help="results/<run-name>/ (default bench_gemm)")
    p.add_argument("--out-dir", default=None, help="results root (default ./results)")
    from common.cli import accept_seed_spellings
    accept_seed_spellings(p)
    return p


def layer_shapes(cfg) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each distinct linear layer of a decoder-only model."""
    h = cfg.hidden_size
    heads = cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or h // heads
    kv = cfg.num_key_value_heads * hd
    return {"q_proj/o_proj": (h, heads * hd), "k_proj/v_proj": (h, kv), "gate_proj/up_proj": (h, cfg.intermediate_size),
            "down_proj": (cfg.intermediate_size, h), "lm_head": (h, cfg.vocab_size)}


def measure(k: int, n: int, rows: int, min_seconds: float, seed: int = 0) -> dict:
    import torch
    from common.runtime import time_call
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) / k ** 0.5
    x = torch.randn(rows, k, generator=g)
    flops = 2.0 * rows * k * n
    with torch.inference_mode():
        t_torch = time_call(lambda: torch.nn.functional.linear(x, w), min_seconds)
        wp = torch.ops.mkldnn._reorder_linear_weight(w, 64)
        t_dnn = time_call(lambda: torch.ops.mkldnn._linear_pointwise(x, wp, None, "none", [], ""), min_seconds)
        diff = float((torch.nn.functional.linear(x, w) - torch.ops.mkldnn._linear_pointwise(
            x, wp, None, "none", [], "")).abs().max())
    return {"rows": rows, "in": k, "out": n, "torch_gflops": round(flops / t_torch / 1e9, 1),
            "onednn_gflops": round(flops / t_dnn / 1e9, 1), "speedup": round(t_torch / t_dnn, 2),
            "max_abs_diff": diff}


# how often each distinct layer runs per decoder layer (q and o share a shape, as do k/v and gate/up)
LAYERS_PER_BLOCK = {"q_proj/o_proj": 2, "k_proj/v_proj": 2, "gate_proj/up_proj": 2, "down_proj": 1}


def per_decode_step(measurements: list[dict], rows: list[int], n_layers: int) -> dict:
    """Time of all linear layers of one decode step at each row count, per backend: every layer's
    FLOPs (2 x rows x in x out, times how often it runs: ``n_layers`` x LAYERS_PER_BLOCK, the
    lm_head once) over its measured GFLOPS."""
    summary = {}
    for r in rows:
        t = {"torch": 0.0, "onednn": 0.0}
        for m in measurements:
            if m["rows"] != r:
                continue
            times = 1 if m["layer"] == "lm_head" else n_layers * LAYERS_PER_BLOCK[m["layer"]]
            f = 2.0 * r * m["in"] * m["out"] * times
            t["torch"] += f / (m["torch_gflops"] * 1e9)
            t["onednn"] += f / (m["onednn_gflops"] * 1e9)
        summary[str(r)] = {"linear_ms_per_step_torch": round(1e3 * t["torch"], 1),
                           "linear_ms_per_step_onednn": round(1e3 * t["onednn"], 1),
                           "speedup": round(t["torch"] / t["onednn"], 2)}
    return summary


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    import torch
    from transformers import AutoConfig
    from common.engine_step import onednn_available
    from common.models import resolve_model
    from common.results import provenance, results_root, write_json_atomic
    if not onednn_available():
        print("this torch build has no oneDNN linear; nothing to compare", file=sys.stderr)
        return 2
    resolved = resolve_model(args.model)
    cfg = AutoConfig.from_pretrained(resolved.path)
    rows = [int(r) for r in args.rows.split(",") if r.strip()]
    out = []
    for name, (k, n) in layer_shapes(cfg).items():
        for r in rows:
            m = measure(k, n, r, args.min_seconds)
            m["layer"] = name
            out.append(m)
            print(f"{name:18s} rows {r:4d}: torch {m['torch_gflops']:6.1f}  oneDNN {m['onednn_gflops']:6.1f} GFLOPS "
                  f"({m['speedup']:.2f}x), max |diff| {m['max_abs_diff']:.1e}", flush=True)
    summary = per_decode_step(out, rows, cfg.num_hidden_layers)
    res = {**provenance(__file__, argv if argv is not None else sys.argv[1:], vars(args)),
           "model_config": {"ref": resolved.ref, "hidden": cfg.hidden_size, "intermediate": cfg.intermediate_size,
                            "layers": cfg.num_hidden_layers, "vocab": cfg.vocab_size},
           "torch_threads": torch.get_num_threads(), "dtype": "float32", "measurements": out,
           "per_decode_step": summary}
    path = Path(args.out_dir or results_root()) / args.run_name / "result.json"
    write_json_atomic(path, res)
    for r, s in summary.items():
        print(f"all linear layers, {r} rows: torch {s['linear_ms_per_step_torch']} ms, oneDNN "
              f"{s['linear_ms_per_step_onednn']} ms ({s['speedup']}x)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
