"""Continuous-batching CPU decoder over a stock transformers causal LM.

Why: on 2 CPU cores, batch-1 ``generate`` decodes ~8 tok/s and a static padded batch is held
to ``max_new_tokens`` by its slowest member. This engine keeps a batch of ``max_batch`` rows
busy: a sequence leaves the moment it stops (EOS or a stop string) and a queued prompt takes
its row. It runs the model's own modules (``model.model`` + ``model.lm_head``); only the
KV-cache layout and the attention mask are ours (a 4-D additive mask, which transformers
passes through unchanged, so any decoder-only architecture with the standard cache ``update``
works; tested on qwen2 and llama). The batcher and its rows are here; what a forward step runs on
(K/V cache, step layout, attention, oneDNN linears) is in :mod:`common.engine_step`, and how
tokens are chosen from logits (greedy, sampling, speculative verification) in
:mod:`common.engine_tokens`:

* one preallocated K/V buffer per layer, shape [rows, kv_heads, capacity, head_dim]; row i's
  context fills columns [0, lens[i]) (a token's column is its position), a step writes the new
  K/V right after it, and the K/V of rejected drafts is overwritten by the next step, so rows
  never carry holes and attention reads only up to the longest row's context;
* new prompts are prefilled together (one packed causal pass over up to ``prefill_budget``
  prompt tokens) and each prompt's K/V copied into its row;
* the ``n`` samples of a prompt share one prefill (its K/V is copied into ``n`` rows), and the
  token prefix common to all prompts of a call (a chat template's system turn) is prefilled
  once and reused by every prompt;
* steps are packed: the rows' inputs (last token + draft) are concatenated into one sequence,
  so the linear layers compute only real positions; attention alone pads per row, and when
  few rows draft, only those rows pad (every row's first input attends in a single pass);
* the linear layers run oneDNN's GEMM on prepacked weights (:class:`common.engine_step.OneDNNLinears`),
  which is 1.2-2x faster than torch's default MKL sgemm at decode batch sizes on our AMD CPUs;
* finished rows are dropped from the batch when the queue is empty;
* prompt-lookup speculative decoding: each row drafts the tokens that followed the latest
  earlier occurrence of its current 4/3/2-gram in its own prompt + output (chat models echo the
  prompt's signature and docstring; degenerate loops repeat themselves), and one forward pass
  verifies all drafts; the number of positions per step is capped (``spec_budget``), so
  drafting fills small batches (the tail of a run) and stays out of the way of full ones.

Exactness: greedy is argmax of the same logits (a draft token is kept only when it equals the
argmax); sampling draws from softmax(logits / T) truncated by top-k then top-p exactly as
specified (drafts are accepted by the speculative-sampling rule, see
:func:`common.engine_tokens.verify_drafts`), with one ``torch.Generator`` per sample
seeded from (seed, prompt index, sample index), so the same command reproduces every sample,
and a sample does not depend on what else is in the batch unless the per-step speculation budget
had to trim its drafts (that changes which random numbers it consumes, not its distribution).
Batched matmuls, and oneDNN's summation order, may differ from batch-1 MKL ones in the last
bits, which can flip a near-tie argmax; the generation benchmark measures how often
(results/bench_generation).
Log-probabilities are of the chosen token under the model's unmodified distribution
(log_softmax of the raw logits, temperature 1, no truncation).
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import torch

from common.engine_step import (ENGINE_ATTENTION, Int8Linears, OneDNNLinears, SlotCache, onednn_available, packed_step,
                                register_attention, step_layout)
from common.engine_tokens import draft_cap, nucleus_candidates, pick_tokens, sample_seed, verify_drafts

log = logging.getLogger(__name__)


@dataclass
class _Seq:
    prompt_index: int
    sample_index: int
    prompt_len: int
    gen: torch.Generator | None
    token_ids: list = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    # prompt-lookup drafting state
    ctx: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    spec_k: int = 0
    spec_max: int = 0
    drafted: int = 0
    accepted: int = 0

    def start_context(self, prompt_ids: list[int], spec_max: int):
        self.spec_max = spec_max
        self.spec_k = min(4, spec_max)
        if not spec_max:
            return
        for t in prompt_ids:
            self.push(t)

    def push(self, tok: int):
        """Append a token to the drafting context; index the n-grams that end just before it."""
        if not self.spec_max:
            return
        c = self.ctx
        c.append(tok)
        end = len(c) - 1  # n-grams ending at c[end-1] continue at c[end]
        for n in DRAFT_NGRAMS:
            if end >= n:
                self.index[tuple(c[end - n:end])] = end

    def draft(self, limit: int) -> list[int]:
        """Up to ``spec_k`` tokens that followed the latest earlier occurrence of the current
        suffix (longest n-gram first); empty when there is none."""
        k = min(self.spec_k, limit)
        if k <= 0 or not self.spec_max:
            return []
        c = self.ctx
        for n in DRAFT_NGRAMS:
            if len(c) >= n:
                j = self.index.get(tuple(c[-n:]))
                if j is not None and j < len(c):
                    return c[j:j + k]
        return []

    def note_acceptance(self, drafted: int, accepted: int):
        if not drafted:
            return
        self.drafted += drafted
        self.accepted += accepted
        if accepted == drafted:
            self.spec_k = min(self.spec_max, self.spec_k + 2)
        else:
            self.spec_k = max(1, accepted + 1)


DRAFT_NGRAMS = (4, 3, 2)


# the linear layers' GEMM (``ContinuousBatcher(linears=...)``) and how result files name it
LINEAR_GEMMS = {"onednn": "onednn-prepacked", "int8": "int8-per-row", "torch": "torch-default"}


class ContinuousBatcher:
    """Generate for many prompts with continuous batching; see the module docstring."""

    capacity_slack = 64  # spare KV columns allocated up front (the buffer still grows on demand)
    min_shared_prefix = 8  # shorter common prefixes are prefilled with each prompt
    prefill_budget = 640  # most prompt tokens prefilled in one forward pass (several prompts)

    def __init__(self, model, tokenizer, max_batch: int = 64, spec_max: int = 8, spec_budget: int = 160,
                 share_prefix: bool = True, linears: str | None = None):
        """``spec_max``: longest prompt-lookup draft per row (0 = no speculation);
        ``spec_budget``: most token positions one step may compute across all rows, so
        speculation fills a small batch but does not swamp a full one: a step computes each
        row's last token plus its draft, and drafts are cut to a common length so that their
        total fits the budget (:func:`common.engine_tokens.draft_cap`).
        ``share_prefix``: prefill the token prefix common to all prompts once
        (:meth:`_shared_prefix`). ``linears``: the GEMM of the linear layers: ``onednn`` = oneDNN's
        prepacked float32 one (:class:`common.engine_step.OneDNNLinears`; the default when this
        torch build has it), ``int8`` = the int8 one (:class:`common.engine_step.Int8Linears`),
        ``torch`` = torch's default."""
        self.model, self.tok = model, tokenizer
        self.max_batch, self.spec_max, self.spec_budget = max_batch, spec_max, spec_budget
        self.share_prefix = share_prefix
        if linears is None:
            linears = "onednn" if onednn_available() else "torch"
        if linears not in LINEAR_GEMMS:
            raise ValueError(f"linears must be one of {', '.join(LINEAR_GEMMS)}, got {linears!r}")
        self.linears = linears
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        self.eos_ids = eos_token_ids(model, tokenizer)
        register_attention()

    def settings(self) -> dict:
        """What a result file records about the engine that produced it."""
        return {"max_batch": self.max_batch, "spec_max": self.spec_max, "spec_budget": self.spec_budget,
                "packed_steps": True, "shared_prefix": self.share_prefix,
                "linear_gemm": LINEAR_GEMMS[self.linears]}

    # ---- model calls -------------------------------------------------------------------
    @torch.inference_mode()
    def _prefill_group(self, group: list[list[int]], prefix: "SlotCache | None" = None):
        """Prefill several prompts in one packed forward pass; return (last logits [k, V], a cache
        whose row j holds prompt j's K/V in columns [0, len(group[j])))."""
        start = prefix.cur if prefix is not None else 0
        suffixes = [ids[start:] for ids in group]
        t = max(len(x) for x in suffixes)
        cache = SlotCache(self.n_layers, len(group), self.kv_heads, self.head_dim, start + t, self.dtype)
        if start:
            for layer in range(self.n_layers):
                cache.k[layer][:, :, :start] = prefix.k[layer][:, :, :start]
                cache.v[layer][:, :, :start] = prefix.v[layer][:, :, :start]
        cache.lens[:] = start
        logits = self._verify(cache, suffixes, last_only=True)
        cache.lens = torch.tensor([len(ids) for ids in group], dtype=torch.long)
        return logits, cache

    def _shared_prefix(self, prompt_ids: list[list[int]]) -> "SlotCache | None":
        """K/V of the longest token prefix shared by all prompts (a chat template's system turn,
        a few-shot block), when it is at least ``min_shared_prefix`` tokens and there are
        several prompts; every prompt keeps at least its last token for its own prefill."""
        if not self.share_prefix or len(prompt_ids) < 2:
            return None
        first = prompt_ids[0]
        n = min(len(x) for x in prompt_ids) - 1
        for x in prompt_ids[1:]:
            m = 0
            while m < n and x[m] == first[m]:
                m += 1
            n = m
        if n < self.min_shared_prefix:
            return None
        return self._prefill_group([first[:n]])[1]

    @torch.inference_mode()
    def _verify(self, cache: SlotCache, inputs: list[list[int]], last_only: bool = False) -> torch.Tensor:
        """One forward step over every row; row i feeds ``inputs[i]`` (its last token, then any
        draft tokens; empty for an idle row) at positions ``cache.lens[i]``, ``cache.lens[i] + 1``,
        ... (a row's column is its position). Returns the logits of all inputs, row after row:
        [sum(len(inputs[i])), vocab] (float32); with ``last_only``, only each row's last input:
        [rows, vocab] (a prefill). The new K/V are written after each row's context; the caller
        advances ``cache.lens`` by the number of them that stay.

        The step is packed: the rows' inputs are concatenated into one sequence of
        ``sum(len(inputs[i]))`` positions, so the linear layers (nearly all of the work) compute
        only real positions; only attention pads rows to a common input length, and when few
        rows draft, only those rows (see :func:`common.engine_step.gqa_attention`)."""
        rows = len(inputs)
        nvec = torch.tensor([len(x) for x in inputs], dtype=torch.long)
        row_idx, j_idx, t, width, mask, split = step_layout(cache.lens, nvec, self.dtype)
        # K/V columns attention reads per layer and kv head (its memory traffic), for the stats
        self.kv_columns = split.kv_columns() if split is not None else rows * width
        pos = cache.lens[row_idx] + j_idx
        cache.begin_step(row_idx, j_idx, width)
        try:
            flat_ids = torch.tensor([[tok for x in inputs for tok in x]], dtype=torch.long)
            with packed_step(row_idx, j_idx, rows, t, split):
                out = self.model.model(input_ids=flat_ids, past_key_values=cache, use_cache=True,
                                       position_ids=pos[None], attention_mask=mask)
            flat = out.last_hidden_state[0]
            if last_only:
                flat = flat[torch.cumsum(nvec, 0) - 1]
        finally:
            cache._write = None
        return self.model.lm_head(flat).float()

    # ---- main loop ---------------------------------------------------------------------
    def generate(self, prompt_ids: list[list[int]], params, on_done=None, progress=None, seed_keys=None):
        """See :meth:`_generate`; runs with the engine's attention function, then restores."""
        cfg = self.model.config
        before = cfg._attn_implementation
        cfg._attn_implementation = ENGINE_ATTENTION
        linears = {"int8": Int8Linears, "onednn": OneDNNLinears}.get(self.linears)
        linears = linears(self.model) if linears else contextlib.nullcontext()
        try:  # one inference-mode region: buffers grown mid-run stay writable by the loop
            with torch.inference_mode(), linears:
                return self._generate(prompt_ids, params, on_done, progress, seed_keys)
        finally:
            cfg._attn_implementation = before

    def _generate(self, prompt_ids: list[list[int]], params, on_done=None, progress=None, seed_keys=None):
        """Return, per prompt, a list of ``params.n`` finished _Seq objects.

        Sample ``si`` of prompt ``pi`` draws from ``sample_seed(params.seed, key, si)`` with
        ``key = seed_keys[pi]`` (default ``pi``): a caller that resumes a workload passes each
        prompt's position in the whole workload, so a resumed run seeds every sample as an
        uninterrupted run does (greedy rows are then identical; a sampled row can still consume
        other random numbers when the per-step speculation budget trims its drafts differently,
        which changes the draw, not its distribution).

        ``on_done(prompt_index, seqs)`` is called as soon as all samples of a prompt finished
        (so callers can write results incrementally); ``progress`` is a tqdm-like bar updated
        per finished prompt.
        """
        call = _Call(self, prompt_ids, params, seed_keys, on_done, progress)
        while call.queue or call.live():
            call.fill_free_rows()       # 1) queued prompts take the free rows, n rows each
            live = call.live()
            if not live:
                continue
            live = call.shrink(live)    # 2) drop idle rows when nothing is queued
            call.step(live)             # 3) one forward pass: every row's last token + its draft
        self.stats = call.summary()
        log.info("engine: %s", self.stats)
        return [call.results[i] for i in range(len(prompt_ids))]


class _Call:
    """The state of one :meth:`ContinuousBatcher._generate` call: the prompt queue, the batch's
    rows (the sample in each, its context length = next position, 0 when idle, and its last
    token) with their K/V cache, the finished samples, and the call's stats."""

    def __init__(self, eng: ContinuousBatcher, prompt_ids: list[list[int]], params, seed_keys=None,
                 on_done=None, progress=None):
        n = params.n
        if seed_keys is not None and len(seed_keys) != len(prompt_ids):
            raise ValueError(f"seed_keys has {len(seed_keys)} entries for {len(prompt_ids)} prompts")
        self.eng, self.prompt_ids, self.params, self.seed_keys = eng, prompt_ids, params, seed_keys
        self.on_done, self.progress = on_done, progress
        self.queue = deque(range(len(prompt_ids)))
        self.results: dict[int, list] = {}
        self.pending: dict[int, int] = {}
        # rows and columns are allocated once: a row holds its prompt, its tokens and one draft
        n_rows = max(n, min(eng.max_batch, len(prompt_ids) * n))
        longest = max(len(x) for x in prompt_ids)
        self.t_start = time.perf_counter()
        st = self.st = eng.stats = {
            "prompts": len(prompt_ids), "prefill_s": 0.0, "prefill_tokens": 0, "steps": 0, "step_s": 0.0,
            "step_positions": 0, "step_rows": 0, "drafted": 0, "draft_accepted": 0, "tail_steps": 0,
            "tail_s": 0.0, "prefill_calls": 0, "kv_columns": 0}
        self.shared = eng._shared_prefix(prompt_ids)
        st["shared_prefix_tokens"] = self.shared.cur if self.shared is not None else 0
        st["prefill_s"] += time.perf_counter() - self.t_start
        self.cache = SlotCache(eng.n_layers, n_rows, eng.kv_heads, eng.head_dim,
                               longest + params.max_new_tokens + eng.spec_max + 1 + eng.capacity_slack, eng.dtype)
        self.rows: list[_Seq | None] = [None] * n_rows
        self.positions: list[int] = [0] * n_rows
        self.last_tok: list[int] = [0] * n_rows
        self.stop_max = max((len(s) for s in params.stop), default=0)

    def live(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r is not None]

    def free(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r is None]

    # ---- finishing samples ---------------------------------------------------------------
    def finish(self, seq: _Seq, reason: str):
        seq.finish_reason = reason
        if reason != "stop":
            seq.text = self.eng.tok.decode(seq.token_ids, skip_special_tokens=False)
        self.results.setdefault(seq.prompt_index, []).append(seq)
        self.pending[seq.prompt_index] -= 1
        if self.pending[seq.prompt_index] == 0:
            done = sorted(self.results[seq.prompt_index], key=lambda s: s.sample_index)
            self.results[seq.prompt_index] = done
            if self.on_done:
                self.on_done(seq.prompt_index, done)
            if self.progress is not None:
                self.progress.update(1)

    def accept(self, seq: _Seq, tok: int) -> bool:
        """Record a token; return True if the sequence is finished."""
        if tok in self.eng.eos_ids:
            self.finish(seq, "eos")
            return True
        seq.token_ids.append(tok)
        seq.push(tok)
        if self.params.stop and self.cut_at_stop(seq):
            self.finish(seq, "stop")
            return True
        if len(seq.token_ids) >= self.params.max_new_tokens:
            self.finish(seq, "length")
            return True
        return False

    def cut_at_stop(self, seq: _Seq) -> bool:
        """Decode the sequence; when its text now holds a stop string, cut the text before it,
        keep only the tokens needed to produce the kept text, and return True."""
        tok = self.eng.tok
        prev = len(seq.text)
        seq.text = tok.decode(seq.token_ids, skip_special_tokens=False)
        window_start = max(0, prev - self.stop_max)
        hits = [i for s in self.params.stop if (i := seq.text.find(s, window_start)) >= 0]
        if not hits:
            return False
        cut = min(hits)
        seq.text = seq.text[:cut]
        while seq.token_ids and len(tok.decode(seq.token_ids[:-1], skip_special_tokens=False)) >= cut:
            seq.token_ids.pop()
            if seq.logprobs:
                seq.logprobs.pop()
        return True

    # ---- admitting prompts ---------------------------------------------------------------
    def fill_free_rows(self):
        """Prefill queued prompts while the free rows hold all ``n`` samples of the next one."""
        st = self.st
        free = self.free()
        while self.queue and len(free) >= self.params.n:
            group, tokens = self.next_group(len(free))
            t0 = time.perf_counter()
            group_logits, gcache = self.eng._prefill_group([self.prompt_ids[pi] for pi in group], self.shared)
            st["prefill_s"] += time.perf_counter() - t0
            st["prefill_tokens"] += tokens
            st["prefill_calls"] += 1
            for j, pi in enumerate(group):
                self.admit(pi, gcache, j, group_logits[j], free)
            free = self.free()

    def next_group(self, n_free: int) -> tuple[list[int], int]:
        """Queued prompts that fit in ``n_free`` rows, prefilled together up to ``prefill_budget``
        tokens per forward pass (one prompt alone when it is longer); (prompts, their tokens)."""
        group, tokens = [], 0
        while self.queue and n_free >= self.params.n * (len(group) + 1):
            need = len(self.prompt_ids[self.queue[0]]) - self.st["shared_prefix_tokens"]
            if group and tokens + need > self.eng.prefill_budget:
                break
            group.append(self.queue.popleft())
            tokens += need
        return group, tokens

    def admit(self, pi: int, pcache: SlotCache, j: int, logits: torch.Tensor, free: list[int]):
        """Start the n samples of prompt ``pi`` from its prefill (row ``j`` of ``pcache``): each
        draws its first token, and those not finished by it take a free row."""
        eng, params, ids = self.eng, self.params, self.prompt_ids[pi]
        self.pending[pi] = params.n
        new_seqs = []
        for si in range(params.n):
            gen = None
            if params.temperature > 0:
                key = pi if self.seed_keys is None else self.seed_keys[pi]
                gen = torch.Generator().manual_seed(sample_seed(params.seed, key, si))
            seq = _Seq(pi, si, len(ids), gen)
            seq.start_context(ids, eng.spec_max)
            if not self.accept(seq, self.choose([seq], logits[None])[0]):
                new_seqs.append(seq)
        p = len(ids)
        for seq in new_seqs:
            r = free.pop(0)
            self.cache.ensure_capacity(p + 1)
            for layer in range(eng.n_layers):
                self.cache.k[layer][r, :, :p] = pcache.k[layer][j, :, :p]
                self.cache.v[layer][r, :, :p] = pcache.v[layer][j, :, :p]
            self.rows[r] = seq
            self.positions[r] = p
            self.last_tok[r] = seq.token_ids[-1]

    def choose(self, seqs: list, logits: torch.Tensor) -> list[int]:
        params = self.params
        toks, lps = pick_tokens(logits, params.temperature, params.top_k, params.top_p,
                                [s.gen for s in seqs], params.logprobs)
        if params.logprobs:
            for s, lp in zip(seqs, lps):
                s.logprobs.append(lp)
        return toks

    def shrink(self, live: list[int]) -> list[int]:
        """Drop the idle rows when many rows are idle and nothing is queued; the live rows' indices."""
        if self.queue or len(live) > 0.75 * len(self.rows):
            return live
        self.cache.keep_rows(torch.tensor(live))
        self.rows = [self.rows[i] for i in live]
        self.positions = [self.positions[i] for i in live]
        self.last_tok = [self.last_tok[i] for i in live]
        return list(range(len(self.rows)))

    # ---- one step ------------------------------------------------------------------------
    def step(self, live: list[int]):
        """One forward pass for every row: its last token plus, when speculating, draft tokens
        looked up in its own context (prompt lookup); idle rows feed nothing. Then
        each live row takes the tokens the verification emits."""
        params = self.params
        drafts = self.drafts(live)
        inputs = [([self.last_tok[i]] + drafts[i]) if self.rows[i] is not None else [] for i in range(len(self.rows))]
        flat = self.forward(inputs, drafts, live)
        offs, o = [], 0
        for x in inputs:
            offs.append(o)
            o += len(x)
        # whole-vocabulary work once for all positions: the log-normaliser (log-probabilities)
        # and, greedy, the argmax; per row only its own tokens are looked at
        lse = torch.logsumexp(flat, dim=-1)
        amax = torch.argmax(flat, dim=-1).tolist() if params.temperature == 0 else None
        picked, cands, cpos = {}, None, {}
        if amax is None:
            picked = self.sample_undrafted(flat, lse, offs, [i for i in live if not drafts[i]])
            # nucleus candidates of every drafting row's positions at once
            sel = [j for i in live if i not in picked for j in range(offs[i], offs[i] + len(inputs[i]))]
            if sel:
                cands = nucleus_candidates(flat[sel], params.temperature, params.top_k)
                cpos = {j: c for c, j in enumerate(sel)}
        for i in live:
            a, b = offs[i], offs[i] + len(inputs[i])
            if i in picked:
                emitted, lps = picked[i]
            else:
                rc = None
                if cands is not None:
                    c0 = cpos[a]
                    rc = tuple(None if t is None else t[c0:c0 + b - a] for t in cands)
                emitted, lps = verify_drafts(flat[a:b], drafts[i], params, self.rows[i].gen, lse=lse[a:b],
                                             argmax=None if amax is None else amax[a:b], cands=rc)
            self.advance(i, len(drafts[i]), emitted, lps)

    def drafts(self, live: list[int]) -> dict[int, list[int]]:
        """Each live row's prompt-lookup draft, cut so that the step fits ``spec_budget``."""
        eng, rows = self.eng, self.rows
        drafts = {i: rows[i].draft(self.params.max_new_tokens - len(rows[i].token_ids) - 1) for i in live}
        # the step computes sum(1 + draft) positions: cap the drafts' total
        cap = draft_cap([len(d) for d in drafts.values()], eng.spec_budget - len(live))
        return {i: d[:cap] for i, d in drafts.items()}

    def forward(self, inputs: list[list[int]], drafts: dict, live: list[int]) -> torch.Tensor:
        """The step's forward pass (logits of every input, row after row), timed into the stats."""
        st = self.st
        self.cache.lens = torch.tensor(self.positions, dtype=torch.long)
        t0 = time.perf_counter()
        flat = self.eng._verify(self.cache, inputs)
        dt = time.perf_counter() - t0
        st["steps"] += 1
        st["step_s"] += dt
        st["step_positions"] += sum(len(x) for x in inputs)
        st["kv_columns"] += self.eng.kv_columns
        st["step_rows"] += len(live)
        st["drafted"] += sum(len(d) for d in drafts.values())
        if not self.queue:
            st["tail_steps"] += 1
            st["tail_s"] += dt
        return flat

    def sample_undrafted(self, flat: torch.Tensor, lse: torch.Tensor, offs: list[int], plain: list[int]) -> dict:
        """Sampling: the rows without a draft feed one token each; draw them batched."""
        if not plain:
            return {}
        params = self.params
        toks, _ = pick_tokens(flat[[offs[i] for i in plain]], params.temperature, params.top_k,
                              params.top_p, [self.rows[i].gen for i in plain])
        return {i: ([t], [float(flat[offs[i], t] - lse[offs[i]])]) for i, t in zip(plain, toks)}

    def advance(self, i: int, n_drafted: int, emitted: list[int], lps: list[float]):
        """Row ``i`` takes its emitted tokens; a finished row becomes idle."""
        seq = self.rows[i]
        seq.note_acceptance(n_drafted, len(emitted) - 1)
        for tok, lp in zip(emitted, lps):
            self.positions[i] += 1  # the K/V of the last token and of each accepted draft stay
            if self.params.logprobs:
                seq.logprobs.append(lp)
            if self.accept(seq, tok):
                self.rows[i] = None
                self.positions[i] = 0
                return
        self.last_tok[i] = emitted[-1]

    def summary(self) -> dict:
        """The call's stats, totals filled in and floats rounded."""
        st, seqs = self.st, [x for done in self.results.values() for x in done]
        st["wall_s"] = time.perf_counter() - self.t_start
        st["generated_tokens"] = sum(len(x.token_ids) for x in seqs)
        st["draft_accepted"] = sum(x.accepted for x in seqs)
        st["other_s"] = st["wall_s"] - st["prefill_s"] - st["step_s"]
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in st.items()}


def eos_token_ids(model, tokenizer) -> set[int]:
    return end_token_ids(tokenizer, getattr(model, "generation_config", None))


def checkpoint_end_ids(path: str, tokenizer) -> tuple[int, ...]:
    """:func:`end_token_ids` of a checkpoint directory or hub id, from its generation config when
    it has one (the server and vLLM backends, which load no model here)."""
    from transformers import GenerationConfig
    try:
        gen_cfg = GenerationConfig.from_pretrained(path)
    except OSError:
        gen_cfg = None
    return tuple(sorted(end_token_ids(tokenizer, gen_cfg)))


def end_token_ids(tokenizer, generation_config=None) -> set[int]:
    """Every id that ends a completion: the generation config's and tokenizer's EOS, and the
    chat templates' end-of-turn tokens (``<|im_end|>``, ``<|endoftext|>``) where the vocabulary
    has them, so that a base model under a chat template stops at the end of its turn."""
    ids = set()
    e = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    if isinstance(e, int):
        ids.add(e)
    elif e:
        ids.update(e)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for t in ("<|im_end|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(t)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
            ids.add(tid)
    return ids
