"""Continuous-batching CPU decoder over a stock transformers causal LM.

Why: on 2 CPU cores, batch-1 ``generate`` decodes ~8 tok/s and a static padded batch is held
to ``max_new_tokens`` by its slowest member. This engine keeps a batch of ``max_batch`` rows
busy: a sequence leaves the moment it stops (EOS or a stop string) and a queued prompt takes
its row. It runs the model's own modules (``model.model`` + ``model.lm_head``); only the
KV-cache layout and the attention mask are ours:

* one preallocated K/V buffer per layer, shape [rows, kv_heads, capacity, head_dim]; all rows
  share a write column ``cur``; a per-row validity mask says which columns belong to the row;
* a new prompt is prefilled alone (batch 1, causal) and its K/V written right-aligned at
  columns [cur - p, cur) of its row; RoPE is applied before caching, so a key's column does not
  matter, only the mask does; position ids are per row;
* the ``n`` samples of a prompt share one prefill (its K/V is copied into ``n`` rows);
* columns that no live row uses are dropped (compaction), so the buffer stays within
  max prompt + max new tokens; finished rows are dropped from the batch when the queue is empty.

Exactness: greedy is argmax of the same logits; sampling draws from softmax(logits / T)
truncated by top-k then top-p exactly as specified, with one ``torch.Generator`` per sample
seeded from (seed, prompt index, sample index), so a sample does not depend on what else is in
the batch. Batched matmuls may differ from batch-1 ones in the last bits, which can flip a
near-tie argmax; the generation benchmark measures how often (results/bench_generation).
Log-probabilities are of the chosen token under the model's unmodified distribution
(log_softmax of the raw logits, temperature 1, no truncation).
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)


def sample_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    h = hashlib.sha256(f"{seed}/{prompt_index}/{sample_index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Return probabilities after temperature, top-k and top-p (nucleus) truncation, rows = sequences.

    top-p keeps the smallest set of most-likely tokens whose probability reaches ``top_p`` (the
    token that crosses the threshold is kept), as vLLM and transformers do.
    """
    x = logits.float() / max(temperature, 1e-8)
    if top_k and top_k > 0 and top_k < x.shape[-1]:
        kth = torch.topk(x, top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    probs = torch.softmax(x, dim=-1)
    if top_p < 1.0:
        sp, si = torch.sort(probs, dim=-1, descending=True)
        cum = torch.cumsum(sp, dim=-1)
        remove = (cum - sp) >= top_p  # mass before this token already reaches top_p
        remove[..., 0] = False
        sp = sp.masked_fill(remove, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, si, sp)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


class _SlotCache:
    """KV buffers with per-row validity; duck-types the ``update`` of a transformers Cache."""

    def __init__(self, n_layers, rows, kv_heads, head_dim, capacity, dtype):
        self.k = [torch.zeros(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(n_layers)]
        self.valid = torch.zeros(rows, capacity, dtype=torch.bool)
        self.cur = 0

    @property
    def rows(self):
        return self.valid.shape[0]

    @property
    def capacity(self):
        return self.valid.shape[1]

    # transformers calls update(key_states, value_states, layer_idx) from each attention layer
    def update(self, k, v, layer_idx, *args, **kwargs):
        t = k.shape[2]
        self.k[layer_idx][:, :, self.cur:self.cur + t] = k
        self.v[layer_idx][:, :, self.cur:self.cur + t] = v
        return self.k[layer_idx][:, :, :self.cur + t], self.v[layer_idx][:, :, :self.cur + t]

    def get_seq_length(self, layer_idx=0):
        return self.cur

    def grow_left(self, extra: int):
        """Insert ``extra`` empty columns at the left (rare: a prompt longer than ``cur``)."""
        pad = lambda t: torch.cat([t.new_zeros(*t.shape[:2], extra, t.shape[3]), t], dim=2)
        self.k = [pad(t) for t in self.k]
        self.v = [pad(t) for t in self.v]
        self.valid = torch.cat([self.valid.new_zeros(self.rows, extra), self.valid], dim=1)
        self.cur += extra

    def ensure_capacity(self, need: int):
        if need <= self.capacity:
            return
        extra = max(need - self.capacity, self.capacity // 2)
        pad = lambda t: torch.cat([t, t.new_zeros(*t.shape[:2], extra, t.shape[3])], dim=2)
        self.k = [pad(t) for t in self.k]
        self.v = [pad(t) for t in self.v]
        self.valid = torch.cat([self.valid, self.valid.new_zeros(self.rows, extra)], dim=1)

    def compact(self, live: torch.Tensor):
        """Drop leading columns that no live row uses."""
        used = self.valid[live].any(0)[: self.cur]
        if not used.any():
            first = self.cur
        else:
            first = int(used.nonzero()[0])
        if first == 0:
            return
        for lst in (self.k, self.v):
            for i, t in enumerate(lst):
                lst[i][:, :, : self.cur - first] = t[:, :, first:self.cur].clone()
        self.valid[:, : self.cur - first] = self.valid[:, first:self.cur].clone()
        self.valid[:, self.cur - first:] = False
        self.cur -= first

    def keep_rows(self, idx: torch.Tensor):
        self.k = [t.index_select(0, idx) for t in self.k]
        self.v = [t.index_select(0, idx) for t in self.v]
        self.valid = self.valid.index_select(0, idx)


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


class ContinuousBatcher:
    """Generate for many prompts with continuous batching; see the module docstring."""

    def __init__(self, model, tokenizer, max_batch: int = 32, prefill_chunk: int = 0):
        self.model = model
        self.tok = tokenizer
        self.max_batch = max_batch
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        self.eos_ids = eos_token_ids(model, tokenizer)

    # ---- model calls -------------------------------------------------------------------
    def _logits_last(self, hidden):
        return self.model.lm_head(hidden[:, -1, :]).float()

    @torch.inference_mode()
    def _prefill(self, ids: list[int]):
        """Run one prompt alone; return (last logits [V], per-layer K/V [1,H,p,D])."""
        cache = _SlotCache(self.n_layers, 1, self.kv_heads, self.head_dim, len(ids), self.dtype)
        x = torch.tensor([ids])
        out = self.model.model(input_ids=x, past_key_values=cache, use_cache=True,
                               position_ids=torch.arange(len(ids)).unsqueeze(0),
                               attention_mask={"full_attention": _causal_mask(len(ids), self.dtype),
                                               "sliding_attention": _causal_mask(len(ids), self.dtype)})
        return self._logits_last(out.last_hidden_state)[0], cache

    @torch.inference_mode()
    def _decode(self, cache: _SlotCache, tokens: torch.Tensor, positions: torch.Tensor):
        rows = tokens.shape[0]
        cache.ensure_capacity(cache.cur + 1)
        cache.valid[:, cache.cur] = True
        valid = cache.valid[:, : cache.cur + 1]
        mask = torch.zeros(rows, 1, 1, valid.shape[1], dtype=self.dtype)
        mask.masked_fill_(~valid[:, None, None, :], torch.finfo(self.dtype).min)
        out = self.model.model(input_ids=tokens[:, None], past_key_values=cache, use_cache=True,
                               position_ids=positions[:, None],
                               attention_mask={"full_attention": mask, "sliding_attention": mask})
        cache.cur += 1
        return self._logits_last(out.last_hidden_state)

    # ---- main loop ---------------------------------------------------------------------
    def generate(self, prompt_ids: list[list[int]], params, on_done=None, progress=None):
        """Return, per prompt, a list of ``params.n`` finished _Seq objects.

        ``on_done(prompt_index, seqs)`` is called as soon as all samples of a prompt finished
        (so callers can write results incrementally); ``progress`` is a tqdm-like bar updated
        per finished prompt.
        """
        n = params.n
        queue = deque(range(len(prompt_ids)))
        results: dict[int, list] = {}
        pending: dict[int, int] = {}
        cache = None
        rows: list[_Seq | None] = []
        positions: list[int] = []
        last_tok: list[int] = []
        stop_max = max((len(s) for s in params.stop), default=0)

        def finish(seq: _Seq, reason: str):
            seq.finish_reason = reason
            if reason != "stop":
                seq.text = self.tok.decode(seq.token_ids, skip_special_tokens=False)
            results.setdefault(seq.prompt_index, []).append(seq)
            pending[seq.prompt_index] -= 1
            if pending[seq.prompt_index] == 0:
                done = sorted(results[seq.prompt_index], key=lambda s: s.sample_index)
                results[seq.prompt_index] = done
                if on_done:
                    on_done(seq.prompt_index, done)
                if progress is not None:
                    progress.update(1)

        def choose(seq: _Seq, logits_row: torch.Tensor) -> int:
            if params.temperature == 0:
                tok = int(torch.argmax(logits_row))
            else:
                probs = filter_logits(logits_row[None], params.temperature, params.top_k, params.top_p)[0]
                tok = int(torch.multinomial(probs, 1, generator=seq.gen))
            if params.logprobs:
                seq.logprobs.append(float(torch.log_softmax(logits_row, -1)[tok]))
            return tok

        def accept(seq: _Seq, tok: int) -> bool:
            """Record a token; return True if the sequence is finished."""
            if tok in self.eos_ids:
                finish(seq, "eos")
                return True
            seq.token_ids.append(tok)
            if params.stop:
                prev = len(seq.text)
                seq.text = self.tok.decode(seq.token_ids, skip_special_tokens=False)
                window_start = max(0, prev - stop_max)
                hits = [i for s in params.stop if (i := seq.text.find(s, window_start)) >= 0]
                if hits:
                    cut = min(hits)
                    seq.text = seq.text[:cut]
                    # keep only the tokens that are needed to produce the kept text
                    while seq.token_ids and len(self.tok.decode(seq.token_ids[:-1], skip_special_tokens=False)) >= cut:
                        seq.token_ids.pop()
                        if seq.logprobs:
                            seq.logprobs.pop()
                    finish(seq, "stop")
                    return True
            if len(seq.token_ids) >= params.max_new_tokens:
                finish(seq, "length")
                return True
            return False

        while queue or any(r is not None for r in rows):
            # 1) fill free rows with queued prompts (each prompt needs n rows)
            free = [i for i, r in enumerate(rows) if r is None]
            capacity_left = len(free) + (self.max_batch - len(rows))
            while queue and capacity_left >= min(n, self.max_batch):
                pi = queue.popleft()
                ids = prompt_ids[pi]
                logits, pcache = self._prefill(ids)
                pending[pi] = n
                new_seqs = []
                for si in range(n):
                    gen = None
                    if params.temperature > 0:
                        gen = torch.Generator().manual_seed(sample_seed(params.seed, pi, si))
                    seq = _Seq(pi, si, len(ids), gen)
                    if not accept(seq, choose(seq, logits)):
                        new_seqs.append(seq)
                for seq in new_seqs:
                    if cache is None:
                        cap = len(ids) + params.max_new_tokens + 8
                        cache = _SlotCache(self.n_layers, 0, self.kv_heads, self.head_dim, cap, self.dtype)
                    if free:
                        r = free.pop(0)
                    else:
                        r = len(rows)
                        rows.append(None)
                        positions.append(0)
                        last_tok.append(0)
                        _add_row(cache)
                    p = len(ids)
                    if cache.cur < p:
                        cache.grow_left(p - cache.cur)
                    cache.ensure_capacity(cache.cur + 1)
                    for layer in range(self.n_layers):
                        cache.k[layer][r, :, cache.cur - p: cache.cur] = pcache.k[layer][0, :, :p]
                        cache.v[layer][r, :, cache.cur - p: cache.cur] = pcache.v[layer][0, :, :p]
                    cache.valid[r] = False
                    cache.valid[r, cache.cur - p: cache.cur] = True
                    rows[r] = seq
                    positions[r] = p
                    last_tok[r] = seq.token_ids[-1]
                free = [i for i, r in enumerate(rows) if r is None]
                capacity_left = len(free) + (self.max_batch - len(rows))
            live = [i for i, r in enumerate(rows) if r is not None]
            if not live:
                continue
            # 2) shrink the batch when many rows are idle and nothing is queued
            if not queue and len(live) <= 0.75 * len(rows):
                idx = torch.tensor(live)
                cache.keep_rows(idx)
                rows = [rows[i] for i in live]
                positions = [positions[i] for i in live]
                last_tok = [last_tok[i] for i in live]
                live = list(range(len(rows)))
            # 3) compact unused leading columns now and then
            if cache.cur >= cache.capacity - 1 or (cache.cur % 64 == 0):
                cache.compact(torch.tensor([r is not None for r in rows]))
            # 4) one decode step for every row (idle rows compute garbage that is ignored)
            for i, r in enumerate(rows):
                if r is None:  # idle row: attend only to its own new column
                    cache.valid[i] = False
            logits = self._decode(cache, torch.tensor(last_tok), torch.tensor(positions))
            for i in live:
                seq = rows[i]
                tok = choose(seq, logits[i])
                positions[i] += 1
                if accept(seq, tok):
                    rows[i] = None
                    cache.valid[i] = False
                else:
                    last_tok[i] = tok
        return [results[i] for i in range(len(prompt_ids))]


def _add_row(cache: _SlotCache):
    cache.k = [torch.cat([t, t.new_zeros(1, *t.shape[1:])]) for t in cache.k]
    cache.v = [torch.cat([t, t.new_zeros(1, *t.shape[1:])]) for t in cache.v]
    cache.valid = torch.cat([cache.valid, cache.valid.new_zeros(1, cache.capacity)])


def _causal_mask(n: int, dtype) -> torch.Tensor:
    m = torch.full((n, n), torch.finfo(dtype).min, dtype=dtype).triu(1)
    return m[None, None]


def eos_token_ids(model, tokenizer) -> set[int]:
    ids = set()
    gc = getattr(model, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
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
