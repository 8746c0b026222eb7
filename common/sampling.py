"""One sampling-parameters type and one ``generate`` call over five backends.

Backends (``--backend``):

* ``hf`` — transformers on CPU through :mod:`common.engine` (continuous batching, shared
  prefill for the n samples of a prompt, exact prompt-lookup speculative decoding, stop
  strings, per-sample log-probabilities, LoRA adapters merged through peft). The default here.
* ``naive`` — transformers ``generate`` one prompt at a time; the reference the generation
  benchmark compares against. Slow; kept for checking the fast path.
* ``vllm`` — the GPU path: vLLM's ``LLM.generate`` with ``SamplingParams`` mapped field by
  field, LoRA through ``LoRARequest``, multi-GPU through vLLM's own tensor/data parallelism
  (``--tensor-parallel-size``). It cannot be exercised on the CPU machines this project is
  developed on; it is kept deliberately thin (one function) and raises when vLLM is absent.
* ``server`` — any OpenAI-compatible completions server the user runs (``--server-url``:
  ``vllm serve`` with its own tensor/data parallelism, SGLang, llama.cpp): the GPU and
  multi-node path, and the way to keep vLLM's memory out of a training process
  (:mod:`common.server`).
* ``llamacpp`` — ``llama-server`` started on loopback for a GGUF model (the embedded ones by
  default), llama.cpp's integer kernels on the GGUF's own quantised weights; stopped at exit.
  A LoRA adapter is converted to GGUF once (cached by its hash) and applied by the server.

``auto`` picks vLLM when it is importable and a CUDA device is present, else ``hf``.
Every field of :class:`SamplingParams` is honoured by every backend or rejected loudly.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from common.results import InputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "int8", "naive", "vllm", "llamacpp", "server")


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. ``temperature == 0`` means greedy (then top_p/top_k are ignored)."""
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0               # 0 = no top-k truncation
    max_new_tokens: int = 400
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: bool = False

    def __post_init__(self):
        if self.n < 1:
            raise InputError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        if not (0 < self.top_p <= 1):
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise InputError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature == 0 and self.n > 1:
            raise InputError("greedy decoding (temperature 0) with n > 1 gives n identical samples; "
                             "use a temperature > 0 for several samples")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Completion:
    text: str                    # generated text, cut before the first stop string
    token_ids: list[int]
    finish_reason: str           # "stop" | "eos" | "length"
    logprobs: list[float] | None = None   # per generated token, model's own distribution

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def sum_logprob(self) -> float | None:
        return None if self.logprobs is None else float(sum(self.logprobs))

    @property
    def mean_logprob(self) -> float | None:
        if self.logprobs is None:
            return None
        return float(sum(self.logprobs) / max(1, len(self.logprobs)))


def cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def pick_backend(name: str, dtype: str = "float32") -> str:
    """The backend that generates for ``--backend name``. ``auto``: vLLM when it is installed and
    a GPU is present; else the CPU engine on int8 linear layers (the fastest CPU backend measured,
    results/bench_generation) when the model runs in float32 and this torch build has the int8
    GEMM; else the float32 engine (``hf``)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    try:
        import vllm  # noqa: F401
        has_vllm = True
    except ImportError:
        has_vllm = False
    if has_vllm and cuda_available():
        return "vllm"
    from common.engine_step import int8_available
    return "int8" if dtype == "float32" and int8_available() else "hf"


class LLM:
    """A loaded model behind one ``generate`` call, whatever the backend.

    ``LLM(resolved_model, backend="auto", dtype="float32", adapter=None, max_batch=32)``.
    """

    def __init__(self, resolved, cfg=None, threads: int | None = None, **settings):
        """``cfg``: a :class:`common.runtime.ModelConfig`; ``settings`` override its fields
        (``LLM(resolved, backend="hf", max_batch=8)``)."""
        from common.runtime import ModelConfig
        cfg = dataclasses.replace(cfg or ModelConfig(model=resolved.ref), **settings)
        self.resolved, self.cfg = resolved, cfg
        self.backend = pick_backend(cfg.backend, cfg.dtype)
        self.dtype, self.adapter, self.max_batch, self.spec_max = cfg.dtype, cfg.adapter, cfg.max_batch, cfg.spec_max
        self.server = None
        t0 = time.time()
        if self.backend == "vllm":
            self._init_vllm(cfg.tensor_parallel_size)
        elif self.backend in ("llamacpp", "server"):
            from common.server import connect
            self.tokenizer, self.client, self.server = connect(resolved, cfg)
        else:
            import torch
            from common.models import load_model
            if threads:
                torch.set_num_threads(threads)
            self.model, self.tokenizer = load_model(resolved, dtype=cfg.dtype, adapter=cfg.adapter)
        self.load_seconds = time.time() - t0
        log.info("loaded %s (%s backend, %s) in %.1fs", resolved.ref, self.backend, cfg.dtype, self.load_seconds)

    def close(self) -> None:
        """Stop a server this object started (a no-op for in-process backends)."""
        if self.server is not None:
            self.server.stop()

    # ---- prompts -----------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict], prefill: str = "") -> str:
        """Render chat messages with the model's own template, plus an assistant pre-fill."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ---- generation --------------------------------------------------------------------
    def generate(self, prompts: list[str], params: SamplingParams, on_done=None, progress: bool = True,
                 desc: str = "generate", seed_keys: list[int] | None = None) -> list[list[Completion]]:
        """Sample ``params.n`` completions for each prompt (already rendered text).

        ``on_done(i, completions)`` is called when all samples of prompt ``i`` are finished.
        ``seed_keys`` (CPU backends): per prompt, the integer its samples' seeds derive from
        (default: its index in ``prompts``); resuming callers pass each prompt's index in the
        whole workload so that an interrupted run seeds its remaining samples as an
        uninterrupted run does (see :meth:`common.engine.ContinuousBatcher._generate` for the
        one way a sampled draw can still differ); the server backends send each sample's seed
        with its request (:func:`common.server.request_seed`). vLLM in-process seeds each call
        from ``params.seed`` and ignores it.
        """
        from tqdm.auto import tqdm
        self.last_engine_stats = None
        bar = tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress, dynamic_ncols=True)
        try:
            if self.backend == "vllm":
                out = self._generate_vllm(prompts, params)
                for i, c in enumerate(out):
                    if on_done:
                        on_done(i, c)
                    bar.update(1)
                return out
            ids = [self.encode(p) for p in prompts]
            if self.backend in ("llamacpp", "server"):
                keys = list(range(len(ids))) if seed_keys is None else list(seed_keys)
                return self.client.generate(ids, params, keys, on_done=on_done, bar=bar)
            if self.backend == "naive":
                return self._generate_naive(ids, params, on_done, bar, seed_keys=seed_keys)
            from common.engine import ContinuousBatcher
            eng = ContinuousBatcher(self.model, self.tokenizer, max_batch=self.max_batch, spec_max=self.spec_max,
                                    linears="int8" if self.backend == "int8" else None)
            self.last_engine = eng.settings()
            conv = lambda seqs: [Completion(s.text, list(s.token_ids), s.finish_reason,
                                            list(s.logprobs) if params.logprobs else None) for s in seqs]
            cb = (lambda i, seqs: on_done(i, conv(seqs))) if on_done else None
            out = [conv(s) for s in eng.generate(ids, params, on_done=cb, progress=bar, seed_keys=seed_keys)]
            self.last_engine_stats = eng.stats
            return out
        finally:
            bar.close()

    def generate_naive_one(self, prompt: str, params: SamplingParams, index: int) -> list[Completion]:
        """The reference backend on one prompt that sits at position ``index`` of a workload."""
        return self._generate_naive([self.encode(prompt)], params, None, None, index)[0]

    def _generate_naive(self, ids, params, on_done, bar, index_offset: int = 0, seed_keys=None):
        """transformers ``generate``, batch 1, one sample at a time (reference backend)."""
        import torch
        from common.engine import eos_token_ids
        from common.engine_tokens import sample_seed
        eos = sorted(eos_token_ids(self.model, self.tokenizer))
        out = []
        for pi, p in enumerate(ids, start=index_offset):
            comps = []
            for si in range(params.n):
                kw = dict(max_new_tokens=params.max_new_tokens, eos_token_id=eos,
                          pad_token_id=self.tokenizer.pad_token_id or eos[0])
                if params.temperature > 0:
                    key = pi if seed_keys is None else seed_keys[pi - index_offset]
                    torch.manual_seed(sample_seed(params.seed, key, si))
                    kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p,
                              top_k=params.top_k or None)
                else:
                    kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                if params.stop:
                    kw.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
                if params.logprobs:
                    kw.update(output_scores=True, output_logits=True, return_dict_in_generate=True)
                with torch.inference_mode():
                    g = self.model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long), **kw)
                seq = (g.sequences if params.logprobs else g)[0, len(p):].tolist()
                lps = None
                if params.logprobs:
                    lps = [float(torch.log_softmax(l[0].float(), -1)[t]) for l, t in zip(g.logits, seq)]
                reason = "length"
                if seq and seq[-1] in eos:
                    seq = seq[:-1]
                    reason = "eos"
                    if lps:
                        lps = lps[:-1]
                text = self.tokenizer.decode(seq, skip_special_tokens=False)
                if params.stop:
                    hits = [i for s in params.stop if (i := text.find(s)) >= 0]
                    if hits:
                        text = text[:min(hits)]
                        reason = "stop"
                        while seq and len(self.tokenizer.decode(seq[:-1], skip_special_tokens=False)) >= len(text):
                            seq.pop()
                            if lps:
                                lps.pop()
                comps.append(Completion(text, seq, reason, lps))
            out.append(comps)
            if on_done:
                on_done(pi, comps)
            if bar is not None:
                bar.update(1)
        return out

    # ---- GPU seam (vLLM) ---------------------------------------------------------------
    def _init_vllm(self, tensor_parallel_size: int):  # pragma: no cover - needs a GPU
        """vLLM engine; LoRA enabled when an adapter is given. Not runnable on CPU machines."""
        from vllm import LLM as VLLM
        self._vllm = VLLM(model=self.resolved.path, dtype="bfloat16" if self.dtype == "float32" else self.dtype,
                          enable_lora=bool(self.adapter), max_lora_rank=64,
                          tensor_parallel_size=tensor_parallel_size, seed=0)
        self.tokenizer = self._vllm.get_tokenizer()
        from common.engine import checkpoint_end_ids   # end of turn too: a base model under a chat template
        self.stop_ids = list(checkpoint_end_ids(self.resolved.path, self.tokenizer))

    def _generate_vllm(self, prompts, params):  # pragma: no cover - needs a GPU
        from vllm import SamplingParams as VSP
        sp = VSP(n=params.n, temperature=params.temperature, top_p=params.top_p,
                 top_k=params.top_k if params.top_k > 0 else -1, max_tokens=params.max_new_tokens,
                 stop=list(params.stop), stop_token_ids=self.stop_ids, seed=params.seed,
                 logprobs=0 if params.logprobs else None)
        lora = None
        if self.adapter:
            from vllm.lora.request import LoRARequest
            lora = LoRARequest("adapter", 1, self.adapter)
        outs = self._vllm.generate(prompts, sp, lora_request=lora)
        res = []
        for o in outs:
            comps = []
            for c in o.outputs:
                lps = None
                if params.logprobs and c.logprobs is not None:
                    lps = [d[t].logprob for d, t in zip(c.logprobs, c.token_ids)]
                reason = "length" if c.finish_reason == "length" else (
                    "stop" if isinstance(c.stop_reason, str) else "eos")   # an end-of-turn id is an int
                comps.append(Completion(c.text, list(c.token_ids), reason, lps))
            res.append(comps)
        return res
