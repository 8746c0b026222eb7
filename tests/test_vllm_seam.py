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
