"""The CPU engine: exact sampling, greedy parity with transformers, log-probabilities, LoRA."""
import math

import pytest
import torch

from common.engine_tokens import filter_logits, pick_tokens
from common.sampling import SamplingParams


def _empirical(logits, temperature, top_k, top_p, draws=4000, seed=0):
    gens = [torch.Generator().manual_seed(seed + i) for i in range(draws)]
    toks, _ = pick_tokens(logits.expand(draws, -1), temperature, top_k, top_p, gens)
    return torch.bincount(torch.tensor(toks), minlength=logits.shape[-1]).float() / draws


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.8, 0, 0.95), (1.0, 0, 0.5), (0.7, 5, 1.0), (1.3, 4, 0.9),
                                                     (1.0, 0, 1.0)])
def test_pick_tokens_matches_reference_distribution(temperature, top_k, top_p):
    torch.manual_seed(1)
    logits = torch.randn(1, 40) * 2
    ref = filter_logits(logits, temperature, top_k, top_p)[0]
    emp = _empirical(logits, temperature, top_k, top_p)
    assert torch.all(emp[ref == 0] == 0), "sampled a token outside the truncated support"
    assert torch.max(torch.abs(emp - ref)) < 0.03


def test_pick_tokens_fallback_when_nucleus_exceeds_candidates(monkeypatch):
    import common.engine_tokens as eng
    monkeypatch.setattr(eng, "NUCLEUS_CANDIDATES", 3)
    logits = torch.zeros(1, 30)  # flat: the nucleus needs many more than 3 candidates
    ref = filter_logits(logits, 1.0, 0, 0.9)[0]
    emp = _empirical(logits, 1.0, 0, 0.9, draws=3000)
    assert torch.all(emp[ref == 0] == 0)
    assert (emp > 0).sum() > 3


def test_filter_logits_top_p_keeps_crossing_token():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    probs = filter_logits(logits, 1.0, 0, 0.7)[0]
    assert torch.allclose(probs, torch.tensor([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0]))


def test_greedy_is_argmax_and_logprob_is_raw():
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    toks, lps = pick_tokens(logits, 0.0, 0, 1.0, [None], want_logprobs=True)
    assert toks == [1]
    assert math.isclose(lps[0], float(torch.log_softmax(logits[0], -1)[1]), rel_tol=1e-6)


@pytest.mark.model
def test_fast_path_greedy_equals_transformers_generate(llm, humaneval_tasks):
    from common.prompts import get_protocol
    proto = get_protocol("qwen-official")
    prompts = [proto.render(t, llm) for t in humaneval_tasks[:3]]
    sp = SamplingParams(max_new_tokens=24, stop=proto.stop, logprobs=True)
    fast = llm.generate(prompts, sp, progress=False)
    llm.backend = "naive"
    try:
        ref = llm.generate(prompts, sp, progress=False)
    finally:
        llm.backend = "hf"
    for a, b in zip(fast, ref):
        assert a[0].token_ids == b[0].token_ids
        assert a[0].text == b[0].text
        assert max(abs(x - y) for x, y in zip(a[0].logprobs, b[0].logprobs)) < 1e-3


def _reference_logprobs(model, prompt_ids, gen_ids):
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt_ids + gen_ids])).logits[0].float()
    lsm = torch.log_softmax(out, -1)
    p = len(prompt_ids)
    return [float(lsm[p - 1 + i, t]) for i, t in enumerate(gen_ids)]


@pytest.mark.model
def test_fast_path_logprobs_match_reference_forward(llm, humaneval_tasks):
    """Sampled sequences in one batch (different lengths, shared prefill): each token's
    log-probability equals the one from a plain full forward pass of the whole sequence."""
    from common.prompts import get_protocol
    proto = get_protocol("qwen-official")
    prompts = [proto.render(t, llm) for t in humaneval_tasks[3:5]]
    sp = SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=20, logprobs=True, seed=3)
    outs = llm.generate(prompts, sp, progress=False)
    for prompt, comps in zip(prompts, outs):
        ids = llm.encode(prompt)
        for c in comps:
            ref = _reference_logprobs(llm.model, ids, c.token_ids)
            assert len(ref) == len(c.logprobs)
            assert max(abs(x - y) for x, y in zip(ref, c.logprobs)) < 2e-3


@pytest.mark.model
def test_sampling_is_reproducible_and_independent_of_batch(llm, humaneval_tasks):
    from common.prompts import get_protocol
    proto = get_protocol("qwen-official")
    prompts = [proto.render(t, llm) for t in humaneval_tasks[5:7]]
    sp = SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=11)
    both = llm.generate(prompts, sp, progress=False)
    alone = llm.generate(prompts[1:], sp, progress=False)
    again = llm.generate(prompts, sp, progress=False)
    assert [c.token_ids for c in both[0]] == [c.token_ids for c in again[0]]
    # by default the seed follows the prompt's index in the call: re-running only the first prompt
    # reproduces its samples, and the second prompt alone (index 0) draws other ones ...
    first = llm.generate(prompts[:1], sp, progress=False)
    assert [c.token_ids for c in first[0]] == [c.token_ids for c in both[0]]
    assert len(alone[0]) == 2
    # ... unless the caller passes its position in the whole workload (how resumed runs continue)
    resumed = llm.generate(prompts[1:], sp, progress=False, seed_keys=[1])
    assert [c.token_ids for c in resumed[0]] == [c.token_ids for c in both[1]]
    with pytest.raises(ValueError, match="seed_keys has 2 entries for 1 prompts"):
        llm.generate(prompts[1:], sp, progress=False, seed_keys=[1, 2])


@pytest.mark.model
def test_lora_adapter_on_fast_path(tmp_path, resolved_default, humaneval_tasks):
    """A tiny random LoRA adapter: the fast path (merged weights, continuous batching) gives the
    same log-probabilities as an unmerged peft model's forward pass, and differs from the base."""
    from peft import LoraConfig, get_peft_model
    from common.models import load_model
    from common.prompts import get_protocol
    from common.sampling import LLM

    base, tok = load_model(resolved_default)
    cfg = LoraConfig(r=2, lora_alpha=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(0)
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():  # a small, non-zero update (a random full-size one makes the model chaotic)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.02)
    adir = tmp_path / "adapter"
    peft_model.save_pretrained(str(adir))
    llm = LLM(resolved_default, backend="hf", adapter=str(adir), max_batch=4)
    proto = get_protocol("qwen-official")
    prompt = proto.render(humaneval_tasks[0], llm)
    sp = SamplingParams(max_new_tokens=10, logprobs=True)
    c = llm.generate([prompt], sp, progress=False)[0][0]
    ref = _reference_logprobs(peft_model.eval(), llm.encode(prompt), c.token_ids)
    assert max(abs(x - y) for x, y in zip(ref, c.logprobs)) < 2e-3
    with peft_model.disable_adapter():
        base_lp = _reference_logprobs(peft_model, llm.encode(prompt), c.token_ids)
    assert max(abs(x - y) for x, y in zip(base_lp, c.logprobs)) > 1e-3


@pytest.mark.model
def test_row_reuse_without_spare_columns_keeps_greedy_outputs():
    """Few rows, many prompts, no spare columns: rows are reused by prompts of other lengths and
    drafts reach the end of the buffer; outputs equal a roomy run's and the naive reference's."""
    from common.engine import ContinuousBatcher
    from common.models import resolve_model
    from common.sampling import LLM
    small = LLM(resolve_model("smollm2-135m-instruct"), backend="hf", max_batch=8)
    prompts = [f"def f{i}(x):\n    \"\"\"Return x times {i}.\"\"\"\n" for i in range(5)]
    ids = [small.encode(p) for p in prompts]
    sp = SamplingParams(max_new_tokens=40)
    tight = ContinuousBatcher(small.model, small.tokenizer, max_batch=2, spec_max=8)
    tight.capacity_slack = 0
    roomy = ContinuousBatcher(small.model, small.tokenizer, max_batch=8, spec_max=0)
    a = [s[0].token_ids for s in tight.generate(ids, sp)]
    b = [s[0].token_ids for s in roomy.generate(ids, sp)]
    small.backend = "naive"
    c = [x[0].token_ids for x in small.generate(prompts, sp, progress=False)]
    assert a == b == c


@pytest.mark.parametrize("lengths,budget,cap", [
    ([], 10, 0),               # no live rows
    ([3, 2, 0], 0, 0),         # no budget: no drafts
    ([3, 2, 0], -4, 0),        # more rows than budget
    ([3, 2, 0], 5, 3),         # everything fits: the longest draft is the cap
    ([3, 2, 0], 4, 2),         # 2 + 2 + 0 = 4
    ([8, 8, 8, 8], 9, 2),      # 4 x 2 = 8 <= 9 < 12
    ([8, 1, 1, 1], 6, 3),      # short drafts kept whole, the long one cut: 3 + 1 + 1 + 1
    ([0, 0, 0], 3, 0),         # nobody drafted
    ([5], 1, 1),
])
def test_draft_cap_water_fills_the_budget(lengths, budget, cap):
    from common.engine_tokens import draft_cap
    assert draft_cap(lengths, budget) == cap
    if lengths and budget > 0:
        assert sum(min(n, cap) for n in lengths) <= budget


@pytest.mark.model
def test_packed_steps_compute_only_real_positions():
    """A decode step feeds the model one flat sequence of sum(1 + draft) positions, never more
    than ``spec_budget``, not rows x its longest input; greedy outputs stay the naive reference's."""
    from common.engine import ContinuousBatcher
    from common.models import resolve_model
    from common.sampling import LLM
    small = LLM(resolve_model("smollm2-135m-instruct"), backend="hf", max_batch=8)
    prompts = [f"def f{i}(x):\n    \"\"\"Return x times {i}.\"\"\"\n" + "    # step\n" * (i % 3) for i in range(6)]
    ids = [small.encode(p) for p in prompts]
    sizes = []
    inner = small.model.model.forward

    def counting(*a, **k):
        x = k["input_ids"]
        if int(k["position_ids"].min()) > 0:  # decode steps (a prefill starts at position 0)
            assert x.shape[0] == 1
            sizes.append(x.numel())
        return inner(*a, **k)

    small.model.model.forward = counting
    try:
        eng = ContinuousBatcher(small.model, small.tokenizer, max_batch=4, spec_max=8, spec_budget=24)
        out = eng.generate(ids, SamplingParams(max_new_tokens=48))
    finally:
        small.model.model.forward = inner
    assert sum(sizes) == eng.stats["step_positions"] and max(sizes) <= 24
    assert eng.stats["drafted"] > 0 and max(sizes) > 4   # rows drafted, so a step held more than one token per row
    small.backend = "naive"
    assert [s[0].token_ids for s in out] == [x[0].token_ids for x in small.generate(prompts, SamplingParams(max_new_tokens=48),
                                                                                      progress=False)]


@pytest.mark.skipif(not __import__("common.engine_step", fromlist=["x"]).onednn_available(), reason="no oneDNN")
def test_onednn_linears_match_torch_track_weight_changes_and_restore():
    from common.engine_step import OneDNNLinears
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8, bias=False))
    x = torch.randn(5, 3, 16)
    ref = net(x)
    with torch.inference_mode(), OneDNNLinears(net):
        assert "forward" in net[0].__dict__
        y = net(x)
        assert y.shape == ref.shape and torch.allclose(y, ref, atol=1e-5)
    with torch.no_grad():
        net[2].weight.mul_(2.0)  # an optimizer step / LoRA merge: the packed copy must be rebuilt
    ref2 = net(x)
    with torch.inference_mode(), OneDNNLinears(net):
        assert torch.allclose(net(x), ref2, atol=1e-5)
        long = torch.randn(OneDNNLinears.max_rows + 1, 16)  # a long prefill takes the default GEMM
        assert torch.equal(net(long), torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(
            long, net[0].weight, net[0].bias)), net[2].weight))
    assert "forward" not in net[0].__dict__ and "forward" not in net[2].__dict__
    assert torch.equal(net(x), ref2)


@pytest.mark.model
def test_shared_prefix_prefill_keeps_greedy_outputs():
    """Prompts that share a long prefix (a chat template's system turn): prefilling it once gives
    the same greedy outputs as prefilling every prompt whole, and as the naive reference."""
    from common.engine import ContinuousBatcher
    from common.models import resolve_model
    from common.sampling import LLM
    small = LLM(resolve_model("smollm2-135m-instruct"), backend="hf", max_batch=8)
    head = "# Helpers for a small arithmetic library; every function has a docstring.\n"
    prompts = [head + f"def f{i}(x):\n    \"\"\"Return x plus {i}.\"\"\"\n" for i in range(4)]
    ids = [small.encode(p) for p in prompts]
    sp = SamplingParams(max_new_tokens=32, logprobs=True)
    shared = ContinuousBatcher(small.model, small.tokenizer, max_batch=8)
    assert shared._shared_prefix(ids).cur >= 12
    whole = ContinuousBatcher(small.model, small.tokenizer, max_batch=8, share_prefix=False)
    assert whole._shared_prefix(ids) is None
    a, b = shared.generate(ids, sp), whole.generate(ids, sp)
    assert shared.stats["prefill_calls"] == 1 and shared.stats["shared_prefix_tokens"] >= 12  # 4 prompts, one pass
    assert [s[0].token_ids for s in a] == [s[0].token_ids for s in b]
    for x, y in zip(a, b):
        assert max(abs(p - q) for p, q in zip(x[0].logprobs, y[0].logprobs)) < 1e-3
    small.backend = "naive"
    assert [s[0].token_ids for s in a] == [x[0].token_ids for x in small.generate(prompts, SamplingParams(max_new_tokens=32), progress=False)]


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.8, 0, 0.95), (1.0, 0, 0.5), (0.7, 5, 1.0), (1.3, 4, 0.9),
                                                     (1.0, 0, 1.0)])
def test_nucleus_with_batched_candidates_equals_per_row(temperature, top_k, top_p):
    from common.engine_tokens import nucleus, nucleus_candidates
    torch.manual_seed(3)
    logits = torch.randn(5, 60) * 3
    cands = nucleus_candidates(logits, temperature, top_k)
    for j in range(5):
        a_idx, a_w = nucleus(logits[j], temperature, top_k, top_p)
        c = tuple(None if t is None else t[j] for t in cands)
        b_idx, b_w = nucleus(logits[j], temperature, top_k, top_p, c)
        assert torch.equal(a_idx, b_idx) and torch.allclose(a_w, b_w)
        ref = filter_logits(logits[j:j + 1], temperature, top_k, top_p)[0]
        dense = torch.zeros(60).index_add_(0, b_idx, b_w)
        assert torch.allclose(dense / dense.sum(), ref, atol=1e-6)


@pytest.mark.parametrize("draft", [[], [7], [7, 2], [0, 0, 0]])
def test_verify_drafts_sampling_keeps_the_target_distribution(draft):
    """Whatever the draft, the first emitted token is distributed as the truncated target
    distribution (the speculative-sampling rule), with or without precomputed candidates."""
    from common.engine_tokens import nucleus_candidates, verify_drafts
    torch.manual_seed(4)
    logits = torch.randn(len(draft) + 1, 12) * 2
    params = SamplingParams(n=1, temperature=0.9, top_p=0.9, max_new_tokens=8)
    ref = filter_logits(logits[:1], 0.9, 0, 0.9)[0]
    cands = nucleus_candidates(logits, 0.9, 0)
    draws = 3000
    for pre in (None, cands):
        counts = torch.zeros(12)
        for d in range(draws):
            out, lps = verify_drafts(logits, draft, params, torch.Generator().manual_seed(d), cands=pre)
            counts[out[0]] += 1
            assert 1 <= len(out) <= len(draft) + 1
            assert lps[0] == pytest.approx(float(torch.log_softmax(logits[0], -1)[out[0]]), abs=1e-5)
        emp = counts / draws
        assert torch.all(emp[ref == 0] == 0) and torch.max(torch.abs(emp - ref)) < 0.035


def test_verify_drafts_greedy_accepts_the_argmax_prefix():
    from common.engine_tokens import verify_drafts
    logits = torch.full((4, 6), -5.0)
    for j, t in enumerate([3, 1, 4, 2]):
        logits[j, t] = 5.0
    params = SamplingParams(max_new_tokens=8)
    assert verify_drafts(logits, [3, 1, 4], params, None)[0] == [3, 1, 4, 2]  # all accepted + one more
    assert verify_drafts(logits, [3, 0, 4], params, None)[0] == [3, 1]        # stops at the first mismatch
    assert verify_drafts(logits[:1], [], params, None)[0] == [3]
    assert verify_drafts(logits, [3, 1, 4], params, None, argmax=[3, 1, 4, 2])[0] == [3, 1, 4, 2]


@pytest.mark.parametrize("base,nvec,block,two_pass", [
    ([4, 6, 0, 9, 5], [1, 3, 0, 1, 2], 16, True),   # an idle row, two drafting rows
    ([4, 6, 0, 9, 5], [1, 3, 0, 1, 2], 2, True),    # the same in blocks of 2 rows
    ([3, 3, 3], [1, 1, 1], 16, True),               # nobody drafts: one input per row
    ([2, 7], [4, 3], 16, False),                    # every live row drafts: all rows padded
    ([0, 5, 2], [2, 1, 1], 16, True),               # a drafting row with no context yet
    ([5, 0, 1], [1, 0, 6], 16, True),               # one of two live rows drafts, an idle row between
    ([5, 0, 0, 8, 2, 0], [1, 0, 0, 2, 1, 0], 2, True),  # a block of idle rows is skipped
])
def test_packed_attention_matches_per_query_reference(monkeypatch, base, nvec, block, two_pass):
    """Packed attention (padded, or two-pass in row blocks) equals softmax(q k^T / sqrt(d)) v
    computed query by query over exactly the columns the layout allows: the row's context, then
    its own inputs up to the query."""
    import common.engine_step as eng
    monkeypatch.setattr(eng, "ATTENTION_BLOCK", block)
    torch.manual_seed(0)
    base, nvec = torch.tensor(base), torch.tensor(nvec)
    h, kvh, d = 4, 2, 8
    row_idx, j_idx, t, width, mask, split = eng.step_layout(base, nvec)
    assert (split is not None) == two_pass
    assert width == int((base + nvec.clamp(min=1)).max())
    if split is not None:  # blocks read only what their live rows need; idle blocks are skipped
        for a, b, w in split[-1]:
            assert w == max(int(base[r]) + 1 for r in range(a, b) if nvec[r] > 0)
        covered = {r for a, b, _ in split[-1] for r in range(a, b)}
        assert all(r in covered for r in range(len(base)) if nvec[r] > 0)
    n_pos = row_idx.shape[0]
    assert n_pos == int(nvec.sum())
    key, value = torch.randn(len(base), kvh, width, d), torch.randn(len(base), kvh, width, d)
    query = torch.randn(1, h, n_pos, d)
    expected = torch.empty(n_pos, h, d)
    for p in range(n_pos):
        r, j = int(row_idx[p]), int(j_idx[p])
        cols = int(base[r]) + j + 1
        for hh in range(h):
            g = hh // (h // kvh)
            w = torch.softmax(key[r, g, :cols] @ query[0, hh, p] / d ** 0.5, dim=0)
            expected[p, hh] = w @ value[r, g, :cols]
    for s in ([split, None] if split is not None else [None]):
        with eng.packed_step(row_idx, j_idx, len(base), t, s):
            out, _ = eng.gqa_attention(None, query, key, value, mask)
        assert out.shape == (1, n_pos, h, d)
        assert torch.allclose(out[0], expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# the int8 backend's linear layers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row,values,scale", [
    ([0.0, 0.0, 0.0], [0, 0, 0], 1.0),                      # a zero row: scale 1, no division by zero
    ([1.0, -2.0, 0.5], [64, -127, 32], 2.0 / 127),          # the largest magnitude maps to +-127
    ([127.0, -254.0, 1.0], [64, -127, 0], 2.0),             # small entries round to 0
    ([-3.0, 3.0, 1.5], [-127, 127, 64], 3.0 / 127),         # ties at the extremes stay inside [-127, 127]
    ([1e-30, -1e-30, 0.0], [127, -127, 0], 1e-30 / 127),    # a tiny row keeps its resolution
])
def test_quantize_rows_table(row, values, scale):
    from common.engine_step import quantize_rows
    q, s = quantize_rows(torch.tensor([row]))
    assert q.dtype == torch.int8 and q.tolist() == [values]
    assert s.item() == pytest.approx(scale, rel=1e-6)


def test_int8_linears_are_close_batch_invariant_track_weights_and_restore():
    from common.engine_step import Int8Linears
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 32, bias=False))
    x = torch.randn(6, 3, 64)
    ref = net(x)
    with torch.inference_mode(), Int8Linears(net):
        y = net(x)
        alone = net(x[2:3, 1:2])
        outlier = x.clone()
        outlier[0] *= 1000.0                                 # one loud row elsewhere in the batch
        with_outlier = net(outlier)
    assert y.shape == ref.shape
    rel = ((y - ref).norm() / ref.norm()).item()
    assert 1e-4 < rel < 0.03                                 # quantized (not exact), and close
    assert torch.equal(alone[0, 0], y[2, 1])                 # a row's output ignores the other rows
    assert torch.equal(with_outlier[1:], y[1:])
    with torch.no_grad():
        net[2].weight.mul_(2.0)                              # the int8 copy must follow the weight
    with torch.inference_mode(), Int8Linears(net):
        y2 = net(x)
    assert torch.allclose(y2, 2 * y, rtol=0.05, atol=1e-3)
    assert "forward" not in net[0].__dict__ and "forward" not in net[2].__dict__
    assert torch.allclose(net(x), 2 * ref, atol=1e-6)     # restored: the float32 layers again


@pytest.mark.model
def test_int8_backend_greedy_is_independent_of_batch_and_close_to_float32(resolved_default, humaneval_tasks):
    from common.prompts import get_protocol
    from common.sampling import LLM
    llm8 = LLM(resolved_default, backend="int8", max_batch=8)
    proto = get_protocol("qwen-official")
    prompts = [proto.render(t, llm8) for t in humaneval_tasks[:3]]
    sp = SamplingParams(n=1, temperature=0.0, max_new_tokens=24, logprobs=True)
    together = llm8.generate(prompts, sp, progress=False)
    alone = llm8.generate(prompts[2:], sp, progress=False)
    assert together[2][0].token_ids == alone[0][0].token_ids
    assert llm8.last_engine["linear_gemm"] == "int8-per-row"
    fp32 = LLM(resolved_default, backend="hf", max_batch=8).generate(prompts, sp, progress=False)
    same_first = sum(a[0].token_ids[:8] == b[0].token_ids[:8] for a, b in zip(together, fp32))
    assert same_first >= 2                                   # int8 rarely changes the first tokens
