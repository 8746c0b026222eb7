"""Shared argparse groups, so each default lives once and every script spells flags alike.

Scripts call ``add_model_args``/``add_sampling_args``/``add_run_args`` on their parser and
``run_main(main_fn)`` to turn the project's own errors (InputError, ModelError: bad flags, files,
values, models) into a one-line message and exit status 2; anything else is a bug and keeps its
traceback. Every parser given to one of these groups also reads seed 002's flag spellings
(``--n``, ``--tag``, ``--base-model``, ``--warmup_pairs_path``, ...: :data:`SEED_FLAGS`) as ours,
or stops with one line naming our flag (:func:`accept_seed_spellings`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass

from common.models import DEFAULT_MODEL, EMBEDDED
from common.sampling import BACKENDS


@dataclass(frozen=True)
class SeedFlag:
    """How seed 002 (the paper's reproduction guide) spells one of our flags.

    ``ours``: our flags in order of preference; the first one the script takes is read instead.
    ``where``: the scripts that take it, named when a script takes none of them.
    ``alias=False``: never read as ours (the meaning differs); ``hint`` then says what to do."""
    ours: tuple[str, ...]
    where: str
    alias: bool = True
    hint: str = ""


SEED_FLAGS: dict[str, SeedFlag] = {
    "--n": SeedFlag(("--n-samples",), "tts/*.py, evals/eval_raw.py, experiments/self_consistency.py, "
                                      "experiments/recipe_x_tts_synergy.py"),
    "--tag": SeedFlag(("--run-name",), "every script that writes a run directory under results/; "
                                       "recipe/train_on_pairs.py names its output with --out"),
    "--base-model": SeedFlag(("--model",), "every script that loads a model"),
    "--code-adapter": SeedFlag(("--adapter",), "evals/eval_raw.py, tts/*.py, experiments/*.py"),
    "--warmup_pairs_path": SeedFlag(("--warmup-pairs",), "recipe/multi_pair.py"),
    "--n_problems": SeedFlag(("--problems-per-iter",), "recipe/bootstrap.py, recipe/multi_pair.py"),
    "--n_attempts": SeedFlag(("--attempts",), "recipe/bootstrap.py, recipe/multi_pair.py, recipe/curriculum_code.py"),
    "--iters": SeedFlag(("--iterations",), "recipe/bootstrap.py (recursive bootstrap)"),
    "--iterations": SeedFlag(("--rounds",), "recipe/curriculum_code.py; recipe/bootstrap.py takes --iterations"),
    "--stop": SeedFlag(("--protocol",), "evals/eval_raw.py", alias=False,
                       hint="stop strings come with the prompt protocol: --protocol raw stops at "
                            "\\nclass, \\ndef, \\nif __name__, \\nprint( and \\n#"),
}


def accept_seed_spellings(parser: argparse.ArgumentParser) -> None:
    """Let ``parser`` read seed 002's flag spellings (:data:`SEED_FLAGS`, and ``--a_b`` for
    ``--a-b``) as this repository's flags, or stop with one line naming ours. Installed by the
    shared flag groups below, so every script that calls one of them gets it; idempotent."""
    if not isinstance(parser, argparse.ArgumentParser) or getattr(parser, "_seed_spellings", False):
        return
    parse = parser.parse_known_args

    def parse_known_args(argv=None, namespace=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        return parse(seed_argv(parser, argv), namespace)

    parser.parse_known_args = parse_known_args
    parser._seed_spellings = True


def seed_argv(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with every seed spelling replaced by the flag ``parser`` takes (a note on
    stderr says so); a seed spelling it cannot read exits with status 2 and one line."""
    own = parser._option_string_actions
    out = []
    for i, tok in enumerate(argv):
        if tok == "--":
            return out + argv[i:]
        flag, eq, value = tok.partition("=")
        target = None if not flag.startswith("--") or flag in own else _seed_target(parser, flag)
        if target is None:
            out.append(tok)
            continue
        print(f"{parser.prog}: note: {flag} (seed 002's spelling) is read as {target}", file=sys.stderr)
        out.append(target + eq + value)
    return out


def _seed_target(parser: argparse.ArgumentParser, flag: str) -> str | None:
    own = parser._option_string_actions
    spec = SEED_FLAGS.get(flag)
    if spec is None:
        hyphens = flag.replace("_", "-")
        return hyphens if hyphens != flag and hyphens in own else None
    hit = next((o for o in spec.ours if o in own), None) if spec.alias else None
    if hit is not None:
        return hit
    if not spec.alias:
        msg = f"{flag} is seed 002's flag, not this repository's: {spec.hint} ({spec.where})"
    else:
        msg = (f"{flag} is seed 002's spelling of {' / '.join(spec.ours)}, which {parser.prog} does not take "
               f"(it is in: {spec.where})")
    parser.exit(2, f"{parser.prog}: error: {msg}\n")


def add_code_bench_args(p: argparse.ArgumentParser) -> None:
    """--bench, --data-path and --protocol, as every code-evaluation script spells them."""
    accept_seed_spellings(p)
    from common.prompts import PROTOCOLS
    p.add_argument("--bench", default="humaneval",
                   help="code benchmark: humaneval (offline), problems (offline: a problems file of this "
                        "project as HumanEval tasks, default data/external_problems.jsonl), humaneval_plus, "
                        "humaneval_plus_base, mbpp, mbpp_sanitized (these need --data-path or their "
                        "SELFIMPROVE_DATA_* variable) (default humaneval)")
    p.add_argument("--data-path", default=None, help="local data file for benchmarks not shipped offline")
    p.add_argument("--protocol", default="qwen-official", choices=sorted(PROTOCOLS),
                   help="prompt format and post-processing (default qwen-official)")


SERVER_FLAGS = (
    ("--server-slots", int, 16, "requests in flight to the server; with --backend llamacpp also its parallel slots"),
    ("--server-ctx", int, 2048, "llamacpp backend: context tokens per slot, prompt plus completion"),
    ("--server-args", str, "", "llamacpp backend: extra llama-server flags, e.g. '--spec-type ngram-simple' "
                               "(recorded in result.json)"),
    ("--server-timeout", float, 3600.0, "seconds one request may wait for its completion; a request holds its "
                                        "slot for the whole sample, so on a CPU with many slots one sample can "
                                        "take minutes"),
)


def add_model_args(p: argparse.ArgumentParser, adapter: bool = True) -> None:
    accept_seed_spellings(p)
    g = p.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"embedded alias ({', '.join(EMBEDDED)}), local checkpoint dir, .gguf file, or "
                        f"Hugging Face id (default: {DEFAULT_MODEL})")
    if adapter:
        g.add_argument("--adapter", default=None,
                       help="peft LoRA adapter directory to apply: merged on the CPU engines, converted once to "
                            "GGUF for --backend llamacpp (default: none)")
    g.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="generation backend: auto = vLLM when installed and a GPU is present, else int8 "
                        "(the fastest CPU backend measured, REPRODUCE.md section 3; hf where the model is not "
                        "float32); hf = the CPU engine (continuous batching) in float32, the reference of the "
                        "committed comparisons; int8 = the same engine on int8 linear layers (weights per "
                        "channel, inputs per row; about 1%% error); naive = transformers generate, batch 1 (reference); "
                        "llamacpp = llama-server on loopback for a GGUF model (built by setup.sh); server = the "
                        "OpenAI-compatible server at --server-url (vllm serve, SGLang, llama.cpp)")
    g.add_argument("--server-url", default=None,
                   help="address of a running OpenAI-compatible completions server, e.g. http://gpu-host:8000 "
                        "(implies --backend server); prompts are rendered and tokenized here")
    for flag, kind, default, text in SERVER_FLAGS:
        g.add_argument(flag, type=kind, default=default, help=f"{text} (default {default!r})")
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
    accept_seed_spellings(p)
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
    accept_seed_spellings(p)
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


@dataclass(frozen=True)
class RunOptions:
    """How a run executes (the sandbox, resume and progress flags of :func:`add_run_args`);
    ``workers=None`` means common.sandbox.default_workers, ``timeout=None`` the sandbox's."""
    workers: int | None = None
    timeout: float | None = None
    overwrite: bool = False
    progress: bool = True

    @classmethod
    def from_args(cls, args) -> "RunOptions":
        return cls(workers=args.workers, timeout=args.timeout, overwrite=args.overwrite, progress=not args.quiet)


def sampling_from_args(args, protocol=None, logprobs: bool = False):
    from common.sampling import SamplingParams
    max_new = args.max_new_tokens or (protocol.max_new_tokens if protocol else 400)
    return SamplingParams(n=args.n_samples, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                          max_new_tokens=max_new, stop=protocol.stop if protocol else (), seed=args.seed,
                          logprobs=logprobs)


def comma_list(text: str, flag: str, cast=float) -> list:
    """The sorted distinct values of a comma-separated flag (``cast``: int or float); an
    unreadable value is an InputError naming ``flag``."""
    from common.results import InputError
    try:
        return sorted({cast(x) for x in text.split(",") if x.strip()})
    except ValueError:
        kind = "integers" if cast is int else "numbers"
        raise InputError(f"{flag} must be comma-separated {kind}, got {text!r}") from None


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
