"""Shared argparse groups, so each default lives once and every script spells flags alike.

Scripts call ``add_model_args``/``add_sampling_args``/``add_run_args`` on their parser and
``run_main(main_fn)`` to turn the project's own errors (InputError, ModelError: bad flags, files,
values, models) into a one-line message and exit status 2; anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from common.models import DEFAULT_MODEL, EMBEDDED


def add_code_bench_args(p: argparse.ArgumentParser) -> None:
    """--bench, --data-path and --protocol, as every code-evaluation script spells them."""
    from common.prompts import PROTOCOLS
    p.add_argument("--bench", default="humaneval",
                   help="code benchmark: humaneval (offline), humaneval_plus, humaneval_plus_base, mbpp, "
                        "mbpp_sanitized (these need --data-path or their SELFIMPROVE_DATA_* variable) "
                        "(default humaneval)")
    p.add_argument("--data-path", default=None, help="local data file for benchmarks not shipped offline")
    p.add_argument("--protocol", default="qwen-official", choices=sorted(PROTOCOLS),
                   help="prompt format and post-processing (default qwen-official)")


def add_model_args(p: argparse.ArgumentParser, adapter: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"embedded alias ({', '.join(EMBEDDED)}), local checkpoint dir, .gguf file, or "
                        f"Hugging Face id (default: {DEFAULT_MODEL})")
    if adapter:
        g.add_argument("--adapter", default=None, help="peft LoRA adapter directory to apply (default: none)")
    g.add_argument("--backend", default="auto", choices=("auto", "hf", "naive", "vllm"),
                   help="generation backend: auto = vLLM when installed and a GPU is present, else hf "
                        "(CPU continuous batching); naive = transformers generate, batch 1 (reference)")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="weights/activations dtype on CPU (float32 keeps the dequantised weights exact)")
    g.add_argument("--max-batch", type=int, default=128,
                   help="rows decoded together by the CPU engine (default 128: a decode step's GEMMs run "
                        "at their best from ~96 rows on, REPRODUCE.md section 3; the KV buffer of the 0.5B "
                        "model is ~3 GB at 128 rows and 1,000 columns)")
    g.add_argument("--spec-max", type=int, default=8,
                   help="CPU engine: longest prompt-lookup draft verified per row and step; 0 turns "
                        "speculation off (outputs are unchanged either way; default 8)")
    g.add_argument("--tensor-parallel-size", type=int, default=1,
                   help="vLLM tensor parallelism across GPUs (GPU backend only)")


def add_sampling_args(p: argparse.ArgumentParser, n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                      max_new_tokens: int | None = None) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--n-samples", type=int, default=n, help=f"samples per task (default {n})")
    g.add_argument("--temperature", type=float, default=temperature,
                   help=f"sampling temperature; 0 = greedy (default {temperature})")
    g.add_argument("--top-p", type=float, default=top_p, help=f"nucleus truncation (default {top_p})")
    g.add_argument("--top-k", type=int, default=0, help="top-k truncation, 0 = off (default 0)")
    g.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                   help="generation budget per sample (default: the protocol's own)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (each sample gets its own stream)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--run-name", default=None,
                   help="results/<run-name>/ (default: derived from model, protocol and sampling)")
    g.add_argument("--out-dir", default=None, help="results root (default: ./results or $SELFIMPROVE_RESULTS)")
    g.add_argument("--limit", type=int, default=None, help="only the first N tasks (quick runs)")
    g.add_argument("--workers", type=int, default=None,
                   help="sandbox workers (default: one per CPU, common.sandbox.default_workers)")
    g.add_argument("--timeout", type=float, default=None,
                   help="per-program wall-clock limit in seconds (default: the sandbox's)")
    g.add_argument("--overwrite", action="store_true",
                   help="start the run from scratch instead of resuming results/<run-name>/")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def sampling_from_args(args, protocol=None, logprobs: bool = False):
    from common.sampling import SamplingParams
    max_new = args.max_new_tokens or (protocol.max_new_tokens if protocol else 400)
    return SamplingParams(n=args.n_samples, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                          max_new_tokens=max_new, stop=protocol.stop if protocol else (), seed=args.seed,
                          logprobs=logprobs)


def run_main(fn, argv=None) -> int:
    """Run ``fn(argv)``; the project's own errors become a one-line message and exit status 2
    (``SELFIMPROVE_DEBUG=1`` shows their traceback too); any other exception propagates."""
    from common.models import ModelError
    from common.results import InputError
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        return fn(argv) or 0
    except (InputError, ModelError) as e:
        if os.environ.get("SELFIMPROVE_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
