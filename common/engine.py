"""Continuous-batching CPU decoder over a stock transformers causal LM.

Why: on 2 CPU cores, batch-1 ``generate`` decodes ~8 tok/s and a static padded batch is held
to ``max_new_tokens`` by its slowest member. This engine keeps a batch of ``max_batch`` rows
busy: a sequence leaves the moment it stops (EOS or a stop string) and a queued prompt takes
its row. It runs the model's own modules (``model.model`` + ``model.lm_head``); only the
KV-cache layout and the attention mask are ours (a 4-D additive mask, which transformers
passes through unchanged, so any decoder-only architecture with the standard cache ``update``
works; tested on qwen2 and llama):

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
* the linear layers run oneDNN's GEMM on prepacked weights (:class:`_OneDNNLinears`), which
  is 1.2-2x faster than torch's default MKL sgemm at decode batch sizes on our AMD CPUs;
* finished rows are dropped from the batch when the queue is empty;
* prompt-lookup speculative decoding: each row drafts the tokens that followed the latest
  earlier occurrence of its current 4/3/2-gram in its own prompt + output (chat models echo the
  prompt's signature and docstring; degenerate loops repeat themselves), and one forward pass
  verifies all drafts; the number of positions per step is capped (``spec_budget``), so
  drafting fills small batches (the tail of a run) and stays out of the way of full ones.

Exactness: greedy is argmax of the same logits (a draft token is kept only when it equals the
argmax); sampling draws from softmax(logits / T) truncated by top-k then top-p exactly as
specified (drafts are accepted by the speculative-sampling rule, see :func:`verify_drafts`), with one ``torch.Generator`` per sample
seeded from (seed, prompt index, sample index), so the same command reproduces every sample,
and a sample does not depend on what else is in the batch unless the per-step speculation budget
had to trim its drafts (that changes which random numbers it consumes, not its distribution). Batched matmuls, and oneDNN's summation order, may differ from batch-1 MKL ones in the last
bits, which can flip a near-tie argmax; the generation benchmark measures how often
(results/bench_generation).
Log-probabilities are of the chosen token under the model's unmodified distribution
(log_softmax of the raw logits, temperature 1, no truncation).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

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


NUCLEUS_CANDIDATES = 1024


def pick_tokens(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, gens: list,
                want_logprobs: bool = False) -> tuple[list[int], list[float] | None]:
    """Choose one token per row of ``logits`` [rows, vocab]; exact greedy or exact sampling.

    Sampling restricts to the top-k (if set), then the nucleus; the nucleus is searched among
    the ``NUCLEUS_CANDIDATES`` most likely tokens first, which is exact whenever their mass
    (normalised over the whole vocabulary, or over the top-k) reaches ``top_p``; otherwise that
    row falls back to a full sort (:func:`filter_logits`). Each row draws from its own generator.
    Log-probabilities are of the chosen token under the raw model distribution.
    """
    logits = logits.float()
    if temperature == 0:
        toks = torch.argmax(logits, dim=-1).tolist()
    else:
        x = logits / max(temperature, 1e-8)
        vocab = x.shape[-1]
        cand = min(vocab, top_k if top_k and top_k > 0 else NUCLEUS_CANDIDATES)
        vals, idx = torch.topk(x, cand, dim=-1)  # sorted descending
        norm = torch.logsumexp(vals if (top_k and top_k > 0) else x, dim=-1, keepdim=True)
        p = torch.exp(vals - norm)
        cum = torch.cumsum(p, dim=-1)
        toks = []
        for r in range(x.shape[0]):
            if top_p < 1.0 and cum[r, -1] >= top_p:
                keep = (cum[r] - p[r]) < top_p
                w = p[r] * keep
                toks.append(int(idx[r, torch.multinomial(w, 1, generator=gens[r])]))
            elif top_k and top_k > 0 and top_p >= 1.0:
                toks.append(int(idx[r, torch.multinomial(p[r], 1, generator=gens[r])]))
            else:
                probs = filter_logits(logits[r:r + 1], temperature, top_k, top_p)[0]
                toks.append(int(torch.multinomial(probs, 1, generator=gens[r])))
    lps = None
    if want_logprobs:
        lsm = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        lps = [float(lsm[r, t]) for r, t in enumerate(toks)]
    return toks, lps


ENGINE_ATTENTION = "engine_gqa"
# (row index [P], input index within the row [P], rows, longest input, split) of the packed step
# in progress, or None; ``split`` holds the index tensors of gqa_attention's two-pass form, or None
_PACK = None


def gqa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Attention for grouped K/V heads without materialising repeated K/V.

    Same mathematics as transformers' sdpa path (softmax(q k^T * scale + mask) v with K/V head
    ``h // groups`` serving query head ``h``), but the query heads of a group are stacked so one
    batched matmul reads each cached K/V once; the stock path copies the whole cache ``groups``
    times per layer and step whenever a mask is given. Returns [batch, q_len, heads, head_dim].
    """
    pack = _PACK
    if pack is not None and query.shape[0] == 1 and key.shape[0] != 1:
        # packed step (see ContinuousBatcher._verify): the flat queries go back to their rows
        row_idx, j_idx, rows, t, split = pack
        q = query[0].transpose(0, 1)  # [P, heads, head_dim]
        if split is None:  # every row padded to the step's longest input
            qp = query.new_zeros(rows, q.shape[1], t, q.shape[2])
            qp[row_idx, :, j_idx] = q
            out, _ = gqa_attention(module, qp, key, value, attention_mask, dropout, scaling)
            return out[row_idx, j_idx][None], None
        # not every row drafts: every row's first input attends in one pass (queries of
        # length 1), block of rows by block of rows, each block reading only the columns its
        # longest context needs; then only the drafting rows pad their later inputs to the
        # longest draft, over the columns the drafting rows need
        p0, r0, p1, drows, d1, j1, wd, blocks = split
        out = query.new_empty(q.shape)
        q0 = query.new_zeros(rows, q.shape[1], 1, q.shape[2])
        q0[r0, :, 0] = q[p0]
        o0 = query.new_zeros(rows, 1, q.shape[1], q.shape[2])
        for a, b, w in blocks:
            o0[a:b], _ = gqa_attention(module, q0[a:b], key[a:b, :, :w], value[a:b, :, :w],
                                       attention_mask[a:b, :, :1, :w], dropout, scaling)
        out[p0] = o0[r0, 0]
        if drows.shape[0]:
            qd = query.new_zeros(drows.shape[0], q.shape[1], t - 1, q.shape[2])
            qd[d1, :, j1 - 1] = q[p1]
            od, _ = gqa_attention(module, qd, key[drows, :, :wd], value[drows, :, :wd],
                                  attention_mask[drows, :, 1:, :wd], dropout, scaling)
            out[p1] = od[d1, j1 - 1]
        return out[None], None
    b, h, t, d = query.shape
    kvh = key.shape[1]
    g = h // kvh
    scale = scaling if scaling is not None else d ** -0.5
    q = (query * scale).reshape(b, kvh, g * t, d)
    scores = torch.matmul(q, key.transpose(-1, -2)).view(b, kvh, g, t, key.shape[2])
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None, :, : key.shape[2]]
    probs = torch.softmax(scores.float(), dim=-1).to(value.dtype).view(b, kvh, g * t, key.shape[2])
    out = torch.matmul(probs, value).view(b, h, t, d)
    return out.transpose(1, 2).contiguous(), None


ATTENTION_BLOCK = 16  # rows per block in the first-input attention pass (see step_layout)


class _Split(NamedTuple):
    """Indices of :func:`gqa_attention`'s two-pass form of a packed step (see step_layout)."""
    p0: torch.Tensor      # flat positions of every row's first input
    r0: torch.Tensor      # their rows
    p1: torch.Tensor      # flat positions of later (draft) inputs
    drows: torch.Tensor   # rows with drafts
    d1: torch.Tensor      # each later input's index among the drafting rows
    j1: torch.Tensor      # its input index within its row
    wd: int               # columns the drafting rows read
    blocks: list          # (first row, end row, columns) of the first-input pass

    def kv_columns(self) -> int:
        """Cached (row, column) pairs both passes read per layer and kv head."""
        return sum((b - a) * w for a, b, w in self.blocks) + self.drows.shape[0] * self.wd


def step_layout(base: torch.Tensor, nvec: torch.Tensor, packed: bool = True, dtype=torch.float32):
    """Index tensors and attention mask of one step in which row i, whose context fills columns
    [0, base[i]), feeds ``nvec[i]`` new inputs (0: an idle row) at columns base[i], base[i] + 1, ...

    Returns ``(row_idx, j_idx, t, width, mask, split)``: flat position p is row ``row_idx[p]``'s
    input ``j_idx[p]`` (packed: only real inputs, row after row; unpacked: every row padded to
    ``t``, the longest input); attention reads columns [0, ``width``); ``mask`` [rows, 1, t, width]
    is additive (0 = may attend): query j of row i sees columns <= base[i] + j, and padded queries
    repeat the row's last real one. ``split`` (packed steps in which not every live row drafts)
    holds the indices of :func:`gqa_attention`'s two-pass form (:class:`_Split`); its ``blocks``
    cover the first-input pass ``ATTENTION_BLOCK`` rows at a time, each reading only up to its
    longest live context (blocks of idle rows are skipped), so short rows do not pay for the
    longest one's columns. Otherwise ``split`` is None and every row attends over ``width``
    columns."""
    rows = nvec.shape[0]
    t = max(1, int(nvec.max())) if rows else 1
    if packed:
        row_idx = torch.repeat_interleave(torch.arange(rows), nvec)
        j_idx = torch.arange(row_idx.shape[0]) - (torch.cumsum(nvec, 0) - nvec)[row_idx]
        width = int((base + nvec.clamp(min=1)).max())
    else:
        row_idx = torch.arange(rows).repeat_interleave(t)
        j_idx = torch.arange(t).repeat(rows)
        width = int(base.max()) + t
    last = torch.minimum(torch.arange(t)[None], (nvec - 1).clamp(min=0)[:, None])
    allowed = torch.arange(width)[None, None, :] <= (base[:, None] + last)[:, :, None]
    mask = torch.zeros(rows, 1, t, width, dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    split = None
    drows = (nvec > 1).nonzero().squeeze(1)
    if packed and drows.shape[0] < int((nvec > 0).sum()):
        first = j_idx == 0
        p0, p1 = first.nonzero().squeeze(1), (~first).nonzero().squeeze(1)
        dmap = torch.full((rows,), -1, dtype=torch.long)
        dmap[drows] = torch.arange(drows.shape[0])
        need = torch.where(nvec > 0, base + 1, 0).tolist()  # columns a row's first input reads
        blocks = []
        for a in range(0, rows, ATTENTION_BLOCK):
            w = max(need[a:a + ATTENTION_BLOCK])
            if w:
                blocks.append((a, min(rows, a + ATTENTION_BLOCK), w))
        wd = int((base[drows] + nvec[drows]).max()) if drows.shape[0] else 0
        split = _Split(p0, row_idx[p0], p1, drows, dmap[row_idx[p1]], j_idx[p1], wd, blocks)
    return row_idx, j_idx, t, width, mask, split


def _register_attention():
    from transformers import AttentionInterface
    AttentionInterface.register(ENGINE_ATTENTION, gqa_attention)


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's prepacked fp32 linear (x86 CPU wheels do)."""
    try:
        w = torch.ones(3, 2)
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), torch.ops.mkldnn._reorder_linear_weight(w, 1),
                                               None, "none", [], "")
        return bool(torch.equal(y, torch.full((1, 3), 2.0)))
    except (AttributeError, RuntimeError):
        return False


class _OneDNNLinears:
    """While active, every float32 ``nn.Linear`` of ``model`` runs oneDNN's GEMM on a prepacked
    copy of its weight instead of torch's default CPU GEMM (MKL).

    Why: on the AMD CPUs of our machines oneDNN runs all the linear layers of a decode step 1.2-2x
    faster than torch's default (MKL) sgemm at 1-96 rows, about as fast at 128-320 rows, and
    slower at 640 (``evals/bench_gemm.py``, results/bench_gemm); inputs of more than ``max_rows``
    rows (long prefills) therefore take the default path. Same mathematics, different summation
    order, so results differ from MKL's in the last bits (as a batched GEMM already does from a
    batch-1 one).

    Packed copies are cached on the module and rebuilt when the weight changes (its version
    counter moves after an optimizer step or a LoRA merge); they cost one extra copy of the
    weights in memory."""

    max_rows = 320

    def __init__(self, model):
        self.mods = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32]

    @staticmethod
    def _forward(mod):
        w = mod.weight
        key = (w.data_ptr(), w._version)
        packed = getattr(mod, "_engine_onednn", None)
        if packed is None or packed[0] != key:
            with torch.no_grad():
                packed = (key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), 64))
            mod._engine_onednn = packed
        wp, bias = packed[1], (mod.bias.detach() if mod.bias is not None else None)
        limit = _OneDNNLinears.max_rows

        def forward(x):
            if x.numel() > limit * x.shape[-1]:  # a long prefill: the default GEMM is as fast or faster
                return torch.nn.functional.linear(x, w, bias)
            return torch.ops.mkldnn._linear_pointwise(x, wp, bias, "none", [], "")
        return forward

    def __enter__(self):
        for m in self.mods:
            m.forward = self._forward(m)
        return self

    def __exit__(self, *exc):
        for m in self.mods:
            m.__dict__.pop("forward", None)


class _SlotCache:
    """K/V buffers, one row per sequence, left-aligned: row i's keys/values fill columns
    [0, lens[i]) of its row; duck-types the ``update`` of a transformers Cache.

    A step writes row i's new K/V at columns lens[i], lens[i] + 1, ... (:meth:`begin_step`); the
    caller then advances ``lens[i]`` by the number of them that stay (the last token and the
    accepted drafts), so the K/V of rejected drafts is simply overwritten by the next step and
    a row never carries holes. Attention reads columns [0, width) only, ``width`` being the
    longest row's context plus its new inputs."""

    def __init__(self, n_layers, rows, kv_heads, head_dim, capacity, dtype):
        self.k = [torch.zeros(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(rows, kv_heads, capacity, head_dim, dtype=dtype) for _ in range(n_layers)]
        self.lens = torch.zeros(rows, dtype=torch.long)
        self._write = None  # (row index [P], column [P], width) of the step in progress

    @property
    def rows(self):
        return self.lens.shape[0]

    @property
    def capacity(self):
        return self.k[0].shape[2]

    @property
    def cur(self) -> int:
        """Longest row's context length."""
        return int(self.lens.max()) if self.rows else 0

    def begin_step(self, row_idx: torch.Tensor, j_idx: torch.Tensor, width: int):
        """The next forward pass feeds flat position p to row ``row_idx[p]`` as its
        ``j_idx[p]``-th new input; attention will read columns [0, width)."""
        self.ensure_capacity(width)
        self._write = (row_idx, self.lens[row_idx] + j_idx, width)

    # transformers calls update(key_states, value_states, layer_idx) from each attention layer
    def update(self, k, v, layer_idx, *args, **kwargs):
        row_idx, col, width = self._write
        kvh, d = k.shape[1], k.shape[3]
        # [b, kvh, t, d] -> [b * t, kvh, d], flat position order = row after row (packed: b = 1)
        self.k[layer_idx][row_idx, :, col] = k.transpose(1, 2).reshape(-1, kvh, d)
        self.v[layer_idx][row_idx, :, col] = v.transpose(1, 2).reshape(-1, kvh, d)
        return self.k[layer_idx][:, :, :width], self.v[layer_idx][:, :, :width]

    def get_seq_length(self, layer_idx=0):
        return self.cur

    def ensure_capacity(self, need: int):
        if need <= self.capacity:
            return
        extra = max(need - self.capacity, self.capacity // 2)
        pad = lambda t: torch.cat([t, t.new_zeros(*t.shape[:2], extra, t.shape[3])], dim=2)
        self.k = [pad(t) for t in self.k]
        self.v = [pad(t) for t in self.v]

    def keep_rows(self, idx: torch.Tensor):
        self.k = [t.index_select(0, idx) for t in self.k]
        self.v = [t.index_select(0, idx) for t in self.v]
        self.lens = self.lens.index_select(0, idx)


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


def verify_drafts(logits: torch.Tensor, draft: list[int], params, gen, lse: torch.Tensor | None = None,
                  argmax: list[int] | None = None, cands: tuple | None = None) -> tuple[list[int], list[float]]:
    """Speculative verification of a deterministic draft; returns (emitted tokens, raw logprobs).

    ``logits[j]`` is the model's prediction after the row's last token and ``draft[:j]``.
    Greedy: accept the longest draft prefix that equals the argmax, then emit the argmax at the
    first mismatch (or after the whole draft) -- identical to decoding one token at a time.
    Sampling: the draft is a point mass q, so draft token d at step j is accepted with
    probability p_j(d) (p_j = the temperature/top-k/top-p distribution); on rejection the token
    is drawn from p_j with d removed and renormalised, which is the standard speculative
    sampling rule and leaves every emitted token distributed exactly as p (Leviathan et al.
    2023; Chen et al. 2023). After a fully accepted draft one more token is drawn from p_k.
    ``lse`` (the rows' logsumexp), ``argmax`` and ``cands`` (:func:`nucleus_candidates` of these
    rows) may be passed when already computed.
    """
    if lse is None:
        lse = torch.logsumexp(logits, dim=-1)
    out: list[int] = []
    if params.temperature == 0:
        g = argmax if argmax is not None else torch.argmax(logits, dim=-1).tolist()
        m = 0
        while m < len(draft) and draft[m] == g[m]:
            m += 1
        out = g[:m + 1]
    else:
        for j in range(len(draft) + 1):
            cand = None if cands is None else tuple(None if t is None else t[j] for t in cands)
            idx, w = nucleus(logits[j], params.temperature, params.top_k, params.top_p, cand)
            if j == len(draft):
                out.append(int(idx[torch.multinomial(w, 1, generator=gen)]))
                break
            d = draft[j]
            hit = (idx == d).nonzero()
            pd = float(w[hit[0, 0]]) / float(w.sum()) if len(hit) else 0.0
            u = float(torch.rand(1, generator=gen))
            if u < pd:
                out.append(d)
                continue
            if len(hit):
                w = w.clone()
                w[hit[0, 0]] = 0.0
            out.append(int(idx[torch.multinomial(w, 1, generator=gen)]))
            break
    return out, [float(logits[j, t] - lse[j]) for j, t in enumerate(out)]


def nucleus_candidates(logits: torch.Tensor, temperature: float, top_k: int):
    """Batched first half of :func:`nucleus` for rows of ``logits`` [P, vocab]: the top
    candidates of logits / T (top_k of them, else ``NUCLEUS_CANDIDATES``) and, without top-k,
    the rows' logsumexp of logits / T. Row j of the result is :func:`nucleus`'s ``cand``."""
    x = logits.float() / max(temperature, 1e-8)
    k = min(x.shape[-1], top_k if top_k and top_k > 0 else NUCLEUS_CANDIDATES)
    vals, idx = torch.topk(x, k, dim=-1)
    lse = None if (top_k and top_k > 0) else torch.logsumexp(x, dim=-1)
    return vals, idx, lse


def nucleus(logits_row: torch.Tensor, temperature: float, top_k: int, top_p: float,
            cand: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, unnormalised weights) of the sampling distribution for one position: the
    same truncation rule as :func:`pick_tokens`, searched among the most likely tokens first.
    ``cand``: (values, ids, logsumexp) of this row from :func:`nucleus_candidates`."""
    if cand is None:
        vals, idx, lse = (t[0] if t is not None else None
                          for t in nucleus_candidates(logits_row[None], temperature, top_k))
    else:
        vals, idx, lse = cand
    if top_k and top_k > 0:
        p = torch.softmax(vals, -1)
    else:
        p = torch.exp(vals - lse)
        if top_p >= 1.0 or float(p.sum()) < top_p:
            probs = filter_logits(logits_row[None], temperature, 0, top_p)[0]
            nz = probs.nonzero()[:, 0]
            return nz, probs[nz]
    if top_p < 1.0:
        keep = (torch.cumsum(p, -1) - p) < top_p
        return idx[keep], p[keep]
    return idx, p


class ContinuousBatcher:
    """Generate for many prompts with continuous batching; see the module docstring."""

    capacity_slack = 64  # spare KV columns allocated up front (the buffer still grows on demand)
    min_shared_prefix = 8  # shorter common prefixes are prefilled with each prompt
    prefill_budget = 640  # most prompt tokens prefilled in one forward pass (several prompts)

    def __init__(self, model, tokenizer, max_batch: int = 64, spec_max: int = 8, spec_budget: int = 160,
                 packed: bool = True, share_prefix: bool = True, onednn: bool | None = None):
        """``spec_max``: longest prompt-lookup draft per row (0 = no speculation);
        ``spec_budget``: most token positions one step may compute across all rows, so
        speculation fills a small batch but does not swamp a full one. Packed (the default),
        a step computes each row's last token plus its draft, and drafts are cut to a common
        length so that their total fits the budget (:func:`draft_cap`); unpacked, rows are
        padded to the step's longest input and drafts are cut to ``spec_budget // rows - 1``.
        ``share_prefix``: prefill the token prefix common to all prompts once
        (:meth:`_shared_prefix`). ``onednn``: run the linear layers on oneDNN's prepacked GEMM
        (:class:`_OneDNNLinears`); default: when this torch build has it."""
        self.model = model
        self.tok = tokenizer
        self.max_batch = max_batch
        self.spec_max = spec_max
        self.spec_budget = spec_budget
        self.packed = packed
        self.share_prefix = share_prefix
        self.onednn = onednn_available() if onednn is None else onednn
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        self.eos_ids = eos_token_ids(model, tokenizer)
        _register_attention()

    def settings(self) -> dict:
        """What a result file records about the engine that produced it."""
        return {"max_batch": self.max_batch, "spec_max": self.spec_max, "spec_budget": self.spec_budget,
                "packed_steps": self.packed, "shared_prefix": self.share_prefix,
                "linear_gemm": "onednn-prepacked" if self.onednn else "torch-default"}

    # ---- model calls -------------------------------------------------------------------
    @torch.inference_mode()
    def _prefill_group(self, group: list[list[int]], prefix: "_SlotCache | None" = None):
        """Prefill several prompts in one packed forward pass; return (last logits [k, V], a cache
        whose row j holds prompt j's K/V in columns [0, len(group[j])))."""
        start = prefix.cur if prefix is not None else 0
        suffixes = [ids[start:] for ids in group]
        t = max(len(x) for x in suffixes)
        cache = _SlotCache(self.n_layers, len(group), self.kv_heads, self.head_dim, start + t, self.dtype)
        if start:
            for layer in range(self.n_layers):
                cache.k[layer][:, :, :start] = prefix.k[layer][:, :, :start]
                cache.v[layer][:, :, :start] = prefix.v[layer][:, :, :start]
        cache.lens[:] = start
        logits = self._verify(cache, suffixes, last_only=True)
        cache.lens = torch.tensor([len(ids) for ids in group], dtype=torch.long)
        return logits, cache

    def _shared_prefix(self, prompt_ids: list[list[int]]) -> "_SlotCache | None":
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
    def _verify(self, cache: _SlotCache, inputs: list[list[int]], last_only: bool = False) -> torch.Tensor:
        """One forward step over every row; row i feeds ``inputs[i]`` (its last token, then any
        draft tokens; empty for an idle row) at positions ``cache.lens[i]``, ``cache.lens[i] + 1``,
        ... (a row's column is its position). Returns the logits of all inputs, row after row:
        [sum(len(inputs[i])), vocab] (float32); with ``last_only``, only each row's last input:
        [rows, vocab] (a prefill). The new K/V are written after each row's context; the caller
        advances ``cache.lens`` by the number of them that stay.

        The step is packed: the rows' inputs are concatenated into one sequence of
        ``sum(len(inputs[i]))`` positions, so the linear layers (nearly all of the work) compute
        only real positions; only attention pads rows to a common input length, and when few
        rows draft, only those rows (see :func:`gqa_attention`). Unpacked (``self.packed =
        False``), every row computes ``max(len(inputs[i]))`` positions."""
        global _PACK
        rows = len(inputs)
        nvec = torch.tensor([len(x) for x in inputs], dtype=torch.long)
        row_idx, j_idx, t, width, mask, split = step_layout(cache.lens, nvec, self.packed, self.dtype)
        # K/V columns attention reads per layer and kv head (its memory traffic), for the stats
        self.kv_columns = split.kv_columns() if split is not None else rows * width
        pos = cache.lens[row_idx] + j_idx
        cache.begin_step(row_idx, j_idx, width)
        try:
            if self.packed:
                flat_ids = torch.tensor([[tok for x in inputs for tok in x]], dtype=torch.long)
                _PACK = (row_idx, j_idx, rows, t, split)
                try:
                    out = self.model.model(input_ids=flat_ids, past_key_values=cache, use_cache=True,
                                           position_ids=pos[None], attention_mask=mask)
                finally:
                    _PACK = None
                flat = out.last_hidden_state[0]
                if last_only:
                    flat = flat[torch.cumsum(nvec, 0) - 1]
            else:
                ids = torch.zeros(rows, t, dtype=torch.long)
                for i, x in enumerate(inputs):
                    ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
                out = self.model.model(input_ids=ids, past_key_values=cache, use_cache=True,
                                       position_ids=pos.view(rows, t), attention_mask=mask)
                h = out.last_hidden_state
                flat = torch.cat([h[i, n - 1:n] if last_only else h[i, :n] for i, n in enumerate(nvec.tolist())])
        finally:
            cache._write = None
        return self.model.lm_head(flat).float()

    # ---- main loop ---------------------------------------------------------------------
    def generate(self, prompt_ids: list[list[int]], params, on_done=None, progress=None, seed_keys=None):
        """See :meth:`_generate`; runs with the engine's attention function, then restores."""
        cfg = self.model.config
        before = cfg._attn_implementation
        cfg._attn_implementation = ENGINE_ATTENTION
        linears = _OneDNNLinears(self.model) if self.onednn else contextlib.nullcontext()
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
        n = params.n
        if seed_keys is not None and len(seed_keys) != len(prompt_ids):
            raise ValueError(f"seed_keys has {len(seed_keys)} entries for {len(prompt_ids)} prompts")
        queue = deque(range(len(prompt_ids)))
        results: dict[int, list] = {}
        pending: dict[int, int] = {}
        # rows and columns are allocated once: a row holds its prompt, its tokens and one draft
        n_rows = max(n, min(self.max_batch, len(prompt_ids) * n))
        longest = max(len(x) for x in prompt_ids)
        t_start = time.perf_counter()
        st = self.stats = {"prompts": len(prompt_ids), "prefill_s": 0.0, "prefill_tokens": 0, "steps": 0,
                           "step_s": 0.0, "step_positions": 0, "step_rows": 0, "drafted": 0, "draft_accepted": 0,
                           "tail_steps": 0, "tail_s": 0.0, "prefill_calls": 0,
                           "kv_columns": 0}
        shared = self._shared_prefix(prompt_ids)
        st["shared_prefix_tokens"] = shared.cur if shared is not None else 0
        st["prefill_s"] += time.perf_counter() - t_start
        cache = _SlotCache(self.n_layers, n_rows, self.kv_heads, self.head_dim,
                           longest + params.max_new_tokens + self.spec_max + 1 + self.capacity_slack, self.dtype)
        rows: list[_Seq | None] = [None] * n_rows
        positions: list[int] = [0] * n_rows  # a row's context length = its next position (0 when idle)
        last_tok: list[int] = [0] * n_rows
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

        def choose(seqs: list, logits: torch.Tensor) -> list[int]:
            toks, lps = pick_tokens(logits, params.temperature, params.top_k, params.top_p,
                                    [s.gen for s in seqs], params.logprobs)
            if params.logprobs:
                for s, lp in zip(seqs, lps):
                    s.logprobs.append(lp)
            return toks

        def accept(seq: _Seq, tok: int) -> bool:
            """Record a token; return True if the sequence is finished."""
            if tok in self.eos_ids:
                finish(seq, "eos")
                return True
            seq.token_ids.append(tok)
            seq.push(tok)
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

        def admit(pi: int, pcache: _SlotCache, j: int, logits: torch.Tensor, free: list[int]):
            """Start the n samples of prompt ``pi`` from its prefill (row ``j`` of ``pcache``): each
            draws its first token, and those not finished by it take a free row."""
            ids = prompt_ids[pi]
            pending[pi] = n
            new_seqs = []
            for si in range(n):
                gen = None
                if params.temperature > 0:
                    key = pi if seed_keys is None else seed_keys[pi]
                    gen = torch.Generator().manual_seed(sample_seed(params.seed, key, si))
                seq = _Seq(pi, si, len(ids), gen)
                seq.start_context(ids, self.spec_max)
                if not accept(seq, choose([seq], logits[None])[0]):
                    new_seqs.append(seq)
            p = len(ids)
            for seq in new_seqs:
                r = free.pop(0)
                cache.ensure_capacity(p + 1)
                for layer in range(self.n_layers):
                    cache.k[layer][r, :, :p] = pcache.k[layer][j, :, :p]
                    cache.v[layer][r, :, :p] = pcache.v[layer][j, :, :p]
                rows[r] = seq
                positions[r] = p
                last_tok[r] = seq.token_ids[-1]

        while queue or any(r is not None for r in rows):
            # 1) fill free rows with queued prompts (each prompt needs n rows)
            free = [i for i, r in enumerate(rows) if r is None]
            while queue and len(free) >= n:
                # prompts that fit in the free rows are prefilled together, up to prefill_budget
                # tokens per forward pass (one prompt alone when it is longer)
                group, tokens = [], 0
                while queue and len(free) >= n * (len(group) + 1):
                    need = len(prompt_ids[queue[0]]) - st["shared_prefix_tokens"]
                    if group and tokens + need > self.prefill_budget:
                        break
                    group.append(queue.popleft())
                    tokens += need
                t0 = time.perf_counter()
                group_logits, gcache = self._prefill_group([prompt_ids[pi] for pi in group], shared)
                st["prefill_s"] += time.perf_counter() - t0
                st["prefill_tokens"] += tokens
                st["prefill_calls"] += 1
                for j, pi in enumerate(group):
                    admit(pi, gcache, j, group_logits[j], free)
                free = [i for i, r in enumerate(rows) if r is None]
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
            # 3) one step for every row: its last token plus, when speculating, draft tokens
            #    looked up in its own context (prompt lookup); idle rows feed nothing when packed
            drafts = {i: rows[i].draft(params.max_new_tokens - len(rows[i].token_ids) - 1) for i in live}
            if self.packed:  # the step computes sum(1 + draft) positions: cap the drafts' total
                cap = draft_cap([len(d) for d in drafts.values()], self.spec_budget - len(live))
            else:  # every row is padded to the longest input: rows x t positions
                cap = max(1, min(self.spec_max + 1, self.spec_budget // len(rows))) - 1
            drafts = {i: d[:cap] for i, d in drafts.items()}
            inputs = [([last_tok[i]] + drafts[i]) if rows[i] is not None else [] for i in range(len(rows))]
            cache.lens = torch.tensor(positions, dtype=torch.long)
            t0 = time.perf_counter()
            flat = self._verify(cache, inputs)
            dt = time.perf_counter() - t0
            st["steps"] += 1
            st["step_s"] += dt
            st["step_positions"] += sum(len(x) for x in inputs)
            st["kv_columns"] += self.kv_columns
            st["step_rows"] += len(live)
            st["drafted"] += sum(len(d) for d in drafts.values())
            if not queue:
                st["tail_steps"] += 1
                st["tail_s"] += dt
            # whole-vocabulary work once for all positions: the log-normaliser (log-probabilities)
            # and, greedy, the argmax; per row only its own tokens are looked at
            offs, o = [], 0
            for x in inputs:
                offs.append(o)
                o += len(x)
            lse = torch.logsumexp(flat, dim=-1)
            amax = torch.argmax(flat, dim=-1).tolist() if params.temperature == 0 else None
            plain = [i for i in live if not drafts[i]]  # one token each: sample them batched
            picked = {}
            if plain and amax is None:
                toks, _ = pick_tokens(flat[[offs[i] for i in plain]], params.temperature, params.top_k,
                                      params.top_p, [rows[i].gen for i in plain])
                picked = {i: ([t], [float(flat[offs[i], t] - lse[offs[i]])]) for i, t in zip(plain, toks)}
            cands, cpos = None, {}
            if amax is None:  # sampling: nucleus candidates of every drafting row's positions at once
                sel = [j for i in live if i not in picked for j in range(offs[i], offs[i] + len(inputs[i]))]
                if sel:
                    cands = nucleus_candidates(flat[sel], params.temperature, params.top_k)
                    cpos = {j: c for c, j in enumerate(sel)}
            for i in live:
                seq = rows[i]
                a, b = offs[i], offs[i] + len(inputs[i])
                if i in picked:
                    emitted, lps = picked[i]
                else:
                    rc = None
                    if cands is not None:
                        c0 = cpos[a]
                        rc = tuple(None if t is None else t[c0:c0 + b - a] for t in cands)
                    emitted, lps = verify_drafts(flat[a:b], drafts[i], params, seq.gen, lse=lse[a:b],
                                                 argmax=None if amax is None else amax[a:b], cands=rc)
                seq.note_acceptance(len(drafts[i]), len(emitted) - 1)
                finished = False
                for tok, lp in zip(emitted, lps):
                    positions[i] += 1  # the K/V of the last token and of each accepted draft stay
                    if params.logprobs:
                        seq.logprobs.append(lp)
                    if accept(seq, tok):
                        finished = True
                        break
                if finished:
                    rows[i] = None
                    positions[i] = 0
                else:
                    last_tok[i] = emitted[-1]
        st["wall_s"] = time.perf_counter() - t_start
        st["generated_tokens"] = sum(len(x.token_ids) for seqs in results.values() for x in seqs)
        st["draft_accepted"] = sum(x.accepted for seqs in results.values() for x in seqs)
        st["other_s"] = st["wall_s"] - st["prefill_s"] - st["step_s"]
        st = {k: round(v, 2) if isinstance(v, float) else v for k, v in st.items()}
        self.stats = st
        log.info("engine: %s", st)
        return [results[i] for i in range(len(prompt_ids))]


def draft_cap(lengths: list[int], budget: int) -> int:
    """Largest per-row draft length ``c`` with ``sum(min(l, c) for l in lengths) <= budget``
    (water-filling: short drafts are kept whole, long ones are cut to the same length)."""
    if budget <= 0 or not lengths:
        return 0
    longest = max(lengths)
    if sum(lengths) <= budget:
        return longest
    lo, hi = 0, longest  # sum(min(l, lo)) <= budget < sum(min(l, hi))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if sum(min(l, mid) for l in lengths) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


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
