"""Choosing tokens from logits for the CPU engine (:mod:`common.engine`): exact greedy, exact
top-k/top-p sampling, speculative verification of drafts, per-sample seeds and the per-step
draft cap. Pure functions of tensors; no model here.

Exactness: greedy is the argmax of the logits (a draft token is kept only when it equals the
argmax); sampling draws from softmax(logits / T) truncated by top-k then top-p exactly as
specified, drafts being accepted by the speculative-sampling rule (:func:`verify_drafts`).
Log-probabilities are of the chosen token under the model's unmodified distribution
(log_softmax of the raw logits, temperature 1, no truncation).
"""
from __future__ import annotations

import hashlib

import torch

NUCLEUS_CANDIDATES = 1024


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
