"""The in-process vLLM backend on a stand-in ``vllm`` module (no GPU here): the end-of-turn ids
reach vLLM's SamplingParams (so a base model under a chat template stops at ``<|im_end|>``, the
paper's defect 4 on GPU), and an end-of-turn stop is reported as ``eos``."""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest


@dataclass
class _Out:
    text: str
    token_ids: list
    finish_reason: str
    stop_reason: object
    logprobs: object = None


@dataclass
class _Req:
    outputs: list = field(default_factory=list)


@pytest.fixture
def fake_vllm(monkeypatch):
    from transformers import AutoTokenizer

    from common.models import resolve_model
    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").path)
    seen = {}

    class SamplingParams:
        def __init__(self, **kw):
            seen["params"] = kw

    class LLM:
        def __init__(self, **kw):
            seen["engine"] = kw

        def get_tokenizer(self):
            return tok

        def generate(self, prompts, sp, lora_request=None):
            im_end = tok.convert_tokens_to_ids("<|im_end|>")
            return [_Req([_Out("a", [1], "stop", im_end), _Out("b", [2], "stop", "\n```"),
                          _Out("c", [3], "length", None)]) for _ in prompts]

    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return tok, seen


def test_vllm_gets_end_of_turn_ids_and_reports_eos(fake_vllm):
    from common.models import resolve_model
    from common.sampling import LLM, SamplingParams
    tok, seen = fake_vllm
    llm = LLM(resolve_model("smollm2-135m-instruct"), backend="vllm")
    out = llm.generate(["x"], SamplingParams(max_new_tokens=4, stop=("\n```",)), progress=False)
    assert tok.convert_tokens_to_ids("<|im_end|>") in seen["params"]["stop_token_ids"]
    assert seen["params"]["stop"] == ["\n```"]
    assert [c.finish_reason for c in out[0]] == ["eos", "stop", "length"]


@pytest.mark.parametrize("vllm,cuda,int8,dtype,want", [
    (True, True, True, "float32", "vllm"),       # a GPU with vLLM installed
    (True, False, True, "float32", "int8"),      # vLLM installed, no GPU
    (False, True, True, "float32", "int8"),      # a GPU without vLLM: the CPU engine
    (False, False, True, "float32", "int8"),     # this machine: the fastest CPU backend measured
    (False, False, True, "bfloat16", "hf"),      # int8 layers replace float32 ones only
    (False, False, False, "float32", "hf"),      # a torch build without the int8 GEMM
])
def test_auto_backend_picks_the_fastest_available(monkeypatch, vllm, cuda, int8, dtype, want):
    import common.engine_step as es
    import common.sampling as sampling
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm") if vllm else None)
    monkeypatch.setattr(sampling, "cuda_available", lambda: cuda)
    monkeypatch.setattr(es, "int8_available", lambda: int8)
    assert sampling.pick_backend("auto", dtype) == want
    assert sampling.pick_backend("hf", dtype) == "hf"


def test_int8_gemm_is_available_on_this_cpu_build():
    from common.engine_step import int8_available
    assert int8_available()


@pytest.mark.parametrize("backend,limit,want", [
    ("hf", None, "eval_humaneval_m_qwen-official_greedy"),
    ("int8", None, "eval_humaneval_m_qwen-official_greedy_int8"),
    ("llamacpp", 20, "eval_humaneval_m_qwen-official_greedy_llamacpp_limit20"),
])
def test_default_run_name_names_every_backend_but_the_reference(backend, limit, want):
    from common.runtime import ModelConfig, default_run_name
    from common.sampling import SamplingParams
    assert default_run_name("eval", "humaneval", ModelConfig(model="m", backend=backend), "qwen-official",
                            SamplingParams(), limit) == want
