"""What one forward step of the CPU engine (:mod:`common.engine`) runs on: the K/V cache of the
batch's rows, the layout and mask of a packed step, the grouped-query attention that reads them,
and the oneDNN linear layers. No decoding policy here (see :mod:`common.engine_tokens`).

* :class:`SlotCache`: one preallocated K/V buffer per layer, [rows, kv_heads, capacity,
  head_dim]; row i's context fills columns [0, lens[i]) and a step writes right after it, so
  rows never carry holes;
* :func:`step_layout`: where each flat input of a packed step goes and which columns it may
  attend to (an additive 4-D mask, passed through by transformers unchanged);
* :func:`gqa_attention`: attention registered with transformers as ``ENGINE_ATTENTION``; inside
  :func:`packed_step` it scatters the flat queries back to their rows (two-pass when few rows
  draft);
* :class:`OneDNNLinears`: float32 ``nn.Linear`` layers on oneDNN's prepacked GEMM;
* :class:`Int8Linears`: the same layers on an int8 GEMM (the ``int8`` backend).
"""
from __future__ import annotations

import contextlib
import functools
from typing import NamedTuple

import torch

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
        # packed step (see packed_step and common.engine.ContinuousBatcher._verify): the flat
        # queries go back to their rows
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



@contextlib.contextmanager
def packed_step(row_idx: torch.Tensor, j_idx: torch.Tensor, rows: int, t: int, split):
    """While active, :func:`gqa_attention` treats a batch-1 query as the flat inputs of a packed
    step laid out by :func:`step_layout` (``split``: its :class:`AttentionSplit`, or None)."""
    global _PACK
    _PACK = (row_idx, j_idx, rows, t, split)
    try:
        yield
    finally:
        _PACK = None

ATTENTION_BLOCK = 16  # rows per block in the first-input attention pass (see step_layout)


class AttentionSplit(NamedTuple):
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


def step_layout(base: torch.Tensor, nvec: torch.Tensor, dtype=torch.float32):
    """Index tensors and attention mask of one step in which row i, whose context fills columns
    [0, base[i]), feeds ``nvec[i]`` new inputs (0: an idle row) at columns base[i], base[i] + 1, ...

    Returns ``(row_idx, j_idx, t, width, mask, split)``: flat position p is row ``row_idx[p]``'s
    input ``j_idx[p]`` (only real inputs, row after row; ``t`` is the longest row's input count);
    attention reads columns [0, ``width``); ``mask`` [rows, 1, t, width]
    is additive (0 = may attend): query j of row i sees columns <= base[i] + j, and padded queries
    repeat the row's last real one. ``split`` (steps in which not every live row drafts)
    holds the indices of :func:`gqa_attention`'s two-pass form (:class:`AttentionSplit`); its
    ``blocks`` cover the first-input pass ``ATTENTION_BLOCK`` rows at a time, each reading only up to its
    longest live context (blocks of idle rows are skipped), so short rows do not pay for the
    longest one's columns. Otherwise ``split`` is None and every row attends over ``width``
    columns."""
    rows = nvec.shape[0]
    t = max(1, int(nvec.max())) if rows else 1
    row_idx = torch.repeat_interleave(torch.arange(rows), nvec)
    j_idx = torch.arange(row_idx.shape[0]) - (torch.cumsum(nvec, 0) - nvec)[row_idx]
    width = int((base + nvec.clamp(min=1)).max())
    last = torch.minimum(torch.arange(t)[None], (nvec - 1).clamp(min=0)[:, None])
    allowed = torch.arange(width)[None, None, :] <= (base[:, None] + last)[:, :, None]
    mask = torch.zeros(rows, 1, t, width, dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    split = None
    drows = (nvec > 1).nonzero().squeeze(1)
    if drows.shape[0] < int((nvec > 0).sum()):
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
        split = AttentionSplit(p0, row_idx[p0], p1, drows, dmap[row_idx[p1]], j_idx[p1], wd, blocks)
    return row_idx, j_idx, t, width, mask, split


def register_attention():
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


@functools.lru_cache(maxsize=None)
def int8_available() -> bool:
    """Whether this torch build multiplies int8 matrices on the CPU (``torch._int_mm``)."""
    try:
        a = torch.ones(1, 32, dtype=torch.int8)
        return bool(torch.equal(torch._int_mm(a, torch.ones(32, 8, dtype=torch.int8)),
                                torch.full((1, 8), 32, dtype=torch.int32)))
    except (AttributeError, RuntimeError):
        return False


class _PatchedLinears:
    """While active (a context manager), every float32 ``nn.Linear`` of ``model`` runs the
    forward that :meth:`_forward` builds from a copy of its weight prepared by :meth:`_prepare`;
    the copy is cached on the module under ``_attr`` and rebuilt when the weight changes (its
    version counter moves after an optimizer step or a LoRA merge)."""

    _attr = ""

    def __init__(self, model):
        self.mods = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32]

    @classmethod
    def _prepared(cls, mod):
        w = mod.weight
        key = (w.data_ptr(), w._version)
        cached = getattr(mod, cls._attr, None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, cls._prepare(w.detach()))
            setattr(mod, cls._attr, cached)
        return cached[1]

    def __enter__(self):
        for m in self.mods:
            m.forward = self._forward(m)
        return self

    def __exit__(self, *exc):
        for m in self.mods:
            m.__dict__.pop("forward", None)


class OneDNNLinears(_PatchedLinears):
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
    _attr = "_engine_onednn"

    @staticmethod
    def _prepare(w):
        return torch.ops.mkldnn._reorder_linear_weight(w, 64)

    @classmethod
    def _forward(cls, mod):
        w, wp = mod.weight, cls._prepared(mod)
        bias = mod.bias.detach() if mod.bias is not None else None
        limit = cls.max_rows

        def forward(x):
            if x.numel() > limit * x.shape[-1]:  # a long prefill: the default GEMM is as fast or faster
                return torch.nn.functional.linear(x, w, bias)
            return torch.ops.mkldnn._linear_pointwise(x, wp, bias, "none", [], "")
        return forward


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantization of each row of a 2-D float tensor: (int8 values, float32 scale
    per row) with ``values * scale ~= x``; a row of zeros gets scale 1."""
    scale = x.abs().amax(dim=-1, keepdim=True).float() / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(x / scale).clamp_(-127, 127).to(torch.int8), scale


class Int8Linears(_PatchedLinears):
    """While active, every float32 ``nn.Linear`` of ``model`` multiplies in int8: its weight is
    quantized once per output channel (symmetric, scale = max |w| of the channel / 127), each
    input row per call (scale = max |x| of the row / 127), the product accumulates exactly in
    int32 (``torch._int_mm``, the CPU's VNNI instructions) and is rescaled to float32.

    Why: a decode step is GEMM-bound, and on our CPUs the engine on these layers generates
    greedy HumanEval 1.75x as fast as on oneDNN's float32 ones (workload (a) of
    ``evals/bench_generation.py``, results/bench_generation), which makes it the default CPU
    backend (:func:`common.sampling.pick_backend`). Each
    row is quantized on its own and integer sums are exact, so a row's output does not depend on
    which other rows share the batch (a float32 batched GEMM's last bits do). The price is the
    quantization error (about 1% of a layer's output norm), which changes some completions:
    ``evals/bench_generation.py`` counts them and reports pass@1 beside the float32 engine's.
    The int8 copies (a quarter of the float32 weights' memory) are cached on the modules and
    rebuilt when a weight changes."""

    _attr = "_engine_int8"

    @staticmethod
    def _prepare(w):
        wq, ws = quantize_rows(w)
        return wq.t(), ws.view(1, -1)   # [in, out] view of the [out, in] int8 weight, scale per column

    @classmethod
    def _forward(cls, mod):
        wq_t, w_scale = cls._prepared(mod)
        bias = mod.bias.detach() if mod.bias is not None else None

        def forward(x):
            flat = x.reshape(-1, x.shape[-1])
            xq, x_scale = quantize_rows(flat)
            y = torch._int_mm(xq, wq_t).float().mul_(x_scale).mul_(w_scale)
            if bias is not None:
                y += bias
            return y.view(*x.shape[:-1], y.shape[-1])
        return forward


class SlotCache:
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
