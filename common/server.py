"""Generation through an OpenAI-compatible completions server, and a managed llama-server.

One client for every server (``--server-url``: ``vllm serve`` with its own tensor/data
parallelism, SGLang, llama.cpp's ``llama-server``): the project renders and tokenizes every
prompt itself and sends the token ids, so the model input is byte-identical across backends.
Each sample is one request with ``n=1`` and its own seed (:func:`request_seed`, derived from the
sample's position in the workload, as the CPU engine seeds it), so a resumed run asks for the
same samples. Stop strings, top-k/top-p, temperature and log-probabilities map to the
completions schema's fields (``top_k``/``seed`` are extensions both vLLM and llama.cpp accept).

The two log-probability layouts in use are both read: the completions schema's
(``logprobs.tokens`` / ``token_logprobs``, vLLM, with ``return_tokens_as_token_ids``) and
llama.cpp's (``logprobs.content[*].id`` / ``logprob``).

:class:`LlamaServer` starts ``llama-server`` on loopback for a GGUF file, waits until
``/health`` answers, and stops it at exit; the child also gets ``PR_SET_PDEATHSIG`` so a crash
or SIGKILL of this process takes the server with it (nothing is left running).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from common.models import ModelError

log = logging.getLogger(__name__)

SEED_MASK = 0xFFFFFFFE   # llama.cpp seeds are uint32 and 0xFFFFFFFF means "random"


class ServerError(ModelError):
    """A server that cannot be started or reached; the message says what to do."""


def request_seed(seed: int, prompt_key: int, sample_index: int) -> int:
    """The seed of one sample's request: the CPU engine's per-sample seed, folded to 32 bits."""
    from common.engine_tokens import sample_seed
    return sample_seed(seed, prompt_key, sample_index) & SEED_MASK


def completion_body(prompt_ids: list[int], params, seed: int, model: str, stop_ids=()) -> dict:
    """The completions request of one sample (a body that vLLM and llama.cpp both accept).

    ``stop_ids``: the model's end-of-sequence and end-of-turn token ids, so that a base model
    under a chat template stops at ``<|im_end|>`` on every server (vLLM stops only at the
    tokenizer's EOS otherwise)."""
    greedy = params.temperature == 0
    body = {"model": model, "prompt": list(prompt_ids), "n": 1, "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if greedy else params.temperature, "top_p": 1.0 if greedy else params.top_p,
            "seed": seed, "stop": list(params.stop), "stop_token_ids": sorted(stop_ids), "logprobs": 1,
            "return_tokens_as_token_ids": True, "return_token_ids": True}
    if params.top_k and not greedy:
        body["top_k"] = params.top_k
    return body


def parse_choice(choice: dict) -> tuple[str, list[int], list[float], str]:
    """(text, token ids, per-token log-probabilities, finish reason) of one completions choice.

    Finish reasons: ``length``; ``stop`` for a stop string; ``eos`` for an end-of-sequence token
    where the server says which (vLLM's ``stop_reason`` is None then). llama.cpp reports both as
    ``stop`` without saying which, and they stay ``stop``."""
    lp = choice.get("logprobs") or {}
    if "content" in lp:                                      # llama.cpp
        ids = [int(t["id"]) for t in lp["content"]]
        lps = [float(t["logprob"]) for t in lp["content"]]
    else:                                                    # completions schema (vLLM)
        ids = [int(str(t).split(":", 1)[1]) for t in lp.get("tokens") or []]
        lps = [float(x) for x in lp.get("token_logprobs") or []]
    if choice.get("token_ids") is not None:
        ids = [int(t) for t in choice["token_ids"]]
    reason = choice.get("finish_reason") or "length"
    if reason == "stop" and "stop_reason" in choice and not isinstance(choice["stop_reason"], str):
        reason = "eos"
    return choice.get("text") or "", ids, lps, reason


def post_json(url: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:300]
        raise ServerError(f"{url}: HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
        if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
            raise ServerError(f"{url}: a completion took longer than {timeout:g} s; raise --server-timeout (or "
                              f"lower --server-slots) and rerun the same command: finished samples are kept") from None
        raise ServerError(f"{url} does not answer ({e}); start the server (or check --server-url) and rerun "
                          f"the same command: finished samples are kept") from None


@dataclass
class ServerClient:
    """Completions over HTTP, ``concurrency`` requests in flight (match the server's slots)."""
    base_url: str
    model: str = "default"
    concurrency: int = 16
    timeout: float = 600.0
    stop_ids: tuple[int, ...] = ()

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[:-3]

    def check(self) -> None:
        """Fail early, with a message, when nothing answers at ``base_url``."""
        try:
            with urllib.request.urlopen(self.base_url + "/v1/models", timeout=10) as r:
                data = json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, ValueError) as e:
            raise ServerError(f"--server-url {self.base_url}: no OpenAI-compatible server answers there ({e}); "
                              f"start one (e.g. `vllm serve MODEL`) and pass its address") from None
        names = [m.get("id") for m in data.get("data", [])]
        if self.model == "default" and names:
            self.model = names[0]

    def complete(self, prompt_ids: list[int], params, seed: int):
        from common.sampling import Completion
        out = post_json(self.base_url + "/v1/completions", completion_body(prompt_ids, params, seed, self.model, self.stop_ids),
                        self.timeout)
        text, ids, lps, reason = parse_choice(out["choices"][0])
        return Completion(text, ids, reason, lps if params.logprobs else None)

    def generate(self, prompt_ids: list[list[int]], params, seed_keys: list[int], on_done=None, bar=None):
        """``params.n`` samples per prompt; ``on_done(i, completions)`` once a prompt is complete."""
        jobs = [(i, s) for i in range(len(prompt_ids)) for s in range(params.n)]
        results: list[list] = [[None] * params.n for _ in prompt_ids]
        left = [params.n] * len(prompt_ids)
        with ThreadPoolExecutor(max_workers=self.concurrency) as ex:
            futs = {ex.submit(self.complete, prompt_ids[i], params, request_seed(params.seed, seed_keys[i], s)): (i, s)
                    for i, s in jobs}
            try:
                for fut in as_completed(futs):
                    i, s = futs[fut]
                    results[i][s] = fut.result()
                    left[i] -= 1
                    if left[i] == 0:
                        if on_done:
                            on_done(i, results[i])
                        if bar is not None:
                            bar.update(1)
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
        return results


def connect(resolved, cfg):
    """(tokenizer, client, managed server or None) for the ``server`` and ``llamacpp`` backends.

    The tokenizer is the model's own (rendering and tokenizing stay in this process, identical
    for every backend); the end-of-sequence and end-of-turn ids go with every request."""
    from transformers import AutoTokenizer

    from common.engine import checkpoint_end_ids
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    stop_ids = checkpoint_end_ids(resolved.path, tokenizer)
    server = None
    url = cfg.server_url
    if cfg.backend == "llamacpp":
        server = start_llama_server(resolved, cfg)
        url = server.url
    client = ServerClient(url, concurrency=cfg.server_slots, timeout=cfg.server_timeout, stop_ids=stop_ids)
    client.check()
    return tokenizer, client, server


def gguf_path(resolved) -> str:
    """The GGUF file behind a resolved model (embedded alias or .gguf), or an InputError."""
    from common.models import assemble_embedded
    from common.results import InputError
    if resolved.kind == "embedded":
        return str(assemble_embedded(resolved.ref))
    if resolved.kind == "gguf":
        return str(Path(resolved.ref).expanduser().resolve())
    raise InputError(f"--backend llamacpp runs GGUF models (an embedded alias or a .gguf file), not {resolved.ref!r}; "
                     f"for a checkpoint or hub id start `vllm serve` and pass --server-url")


def start_llama_server(resolved, cfg) -> "LlamaServer":
    from common.llamacpp_build import lora_gguf, server_binary
    model_path = gguf_path(resolved)
    lora = (str(lora_gguf(cfg.adapter, resolved.path, resolved.file_sha256)),) if cfg.adapter else ()
    server_cfg = LlamaServerConfig(binary=str(server_binary()), model_path=model_path,
                                   slots=cfg.server_slots, ctx_per_slot=cfg.server_ctx, threads=os.cpu_count() or 1,
                                   lora=lora, extra_args=tuple(shlex.split(cfg.server_args)))
    return LlamaServer(server_cfg).start()


# ---- a managed llama-server -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class LlamaServerConfig:
    """How llama-server is started: slots (parallel sequences), context per slot, threads."""
    binary: str
    model_path: str
    slots: int = 16
    ctx_per_slot: int = 1024
    threads: int = 2
    port: int | None = None
    lora: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    startup_timeout: float = 300.0


class LlamaServer:
    """``llama-server`` on loopback for the lifetime of this object (or process)."""

    def __init__(self, cfg: LlamaServerConfig, log_path: str | Path | None = None):
        self.cfg = cfg
        self.port = cfg.port or free_port()
        self.log_path = Path(log_path) if log_path else Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        c = self.cfg
        cmd = [c.binary, "-m", c.model_path, "--host", "127.0.0.1", "--port", str(self.port), "-np", str(c.slots),
               "-c", str(c.slots * c.ctx_per_slot), "-t", str(c.threads), "-tb", str(c.threads), "--no-webui",
               "--log-disable"]
        for a in c.lora:
            cmd += ["--lora", a]
        return cmd + list(c.extra_args)

    def start(self) -> "LlamaServer":
        if not Path(self.cfg.binary).is_file():
            raise ServerError(f"llama-server not found at {self.cfg.binary}; run `bash setup.sh` to build it")
        if self.cfg.port and port_in_use(self.cfg.port):
            raise ServerError(f"port {self.cfg.port} is in use; pass another --server-port or leave it unset")
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        self._wait_healthy()
        log.info("llama-server pid %d on %s (%d slots)", self.proc.pid, self.url, self.cfg.slots)
        return self

    def _wait_healthy(self) -> None:
        t0 = time.time()
        while time.time() - t0 < self.cfg.startup_timeout:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-600:]
                self.stop()
                raise ServerError(f"llama-server exited at start (status {self.proc.returncode}): {tail.strip()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"llama-server did not become healthy in {self.cfg.startup_timeout:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_logf", None) is not None:
            self._logf.close()
            self._logf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
