"""The completions-server backend: request bodies, both log-probability layouts, seeds, and a
real llama-server (built by setup.sh) for determinism, stops, log-probabilities and clean exit."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
import time
from pathlib import Path

import pytest

from common.server import SEED_MASK, completion_body, parse_choice, request_seed

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "server"


def P(**kw):
    from common.sampling import SamplingParams
    return SamplingParams(**{"max_new_tokens": 32, **kw})


@pytest.mark.parametrize("params,want", [
    (P(), {"temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "stop": [], "n": 1}),
    (P(temperature=0.8, top_p=0.95, top_k=20, stop=("\n```",)),
     {"temperature": 0.8, "top_p": 0.95, "top_k": 20, "stop": ["\n```"]}),
    (P(temperature=0.0, top_p=0.5, top_k=20), {"temperature": 0.0, "top_p": 1.0}),   # greedy ignores truncation
])
def test_completion_body(params, want):
    body = completion_body([1, 2, 3], params, seed=7, model="m")
    assert body["prompt"] == [1, 2, 3] and body["seed"] == 7 and body["model"] == "m"
    for k, v in want.items():
        assert body[k] == v, k
    if params.temperature == 0:
        assert "top_k" not in body


def test_request_seeds_are_per_sample_and_fit_llama_cpp():
    seeds = {request_seed(0, p, s) for p in range(50) for s in range(10)}
    assert len(seeds) == 500 and max(seeds) <= SEED_MASK
    assert request_seed(0, 3, 1) == request_seed(0, 3, 1) != request_seed(1, 3, 1)


def test_parse_choice_llama_cpp_layout():
    choice = {"text": "x = 1", "finish_reason": "stop", "logprobs": {"content": [
        {"id": 87, "token": "x", "logprob": -0.5, "bytes": [120], "top_logprobs": []},
        {"id": 284, "token": " =", "logprob": -0.25, "bytes": [32, 61], "top_logprobs": []}]}}
    assert parse_choice(choice) == ("x = 1", [87, 284], [-0.5, -0.25], "stop")


@pytest.mark.parametrize("stop_reason,want", [(None, "eos"), ("\n```", "stop"), (151645, "eos")])
def test_parse_choice_completions_schema_layout(stop_reason, want):
    choice = {"text": "ab", "finish_reason": "stop", "stop_reason": stop_reason,
              "logprobs": {"tokens": ["token_id:64", "token_id:65"], "token_logprobs": [-1.0, -2.0],
                           "top_logprobs": None, "text_offset": [0, 1]}}
    assert parse_choice(choice) == ("ab", [64, 65], [-1.0, -2.0], want)


def test_parse_choice_length():
    assert parse_choice({"text": "", "finish_reason": "length", "logprobs": None})[3] == "length"


def test_recorded_requests_fit_the_vllm_completions_schema():
    """Each recorded request/reply pair: the request uses only fields of vLLM's documented
    CompletionRequest, and the reply parses."""
    schema = json.loads((FIXTURES / "vllm_completion_request_fields.json").read_text())
    pairs = sorted(FIXTURES.glob("*.pair.json"))
    assert pairs
    for path in pairs:
        pair = json.loads(path.read_text())
        unknown = set(pair["request"]) - set(schema["fields"])
        assert not unknown, (path.name, unknown)
        text, ids, lps, reason = parse_choice(pair["reply"]["choices"][0])
        assert len(ids) == len(lps) and reason in ("stop", "eos", "length"), path.name


# -- a real llama-server (smollm2-135m-instruct, the GGUF file the embedded alias ships) ----------

KILL_PARENT = textwrap.dedent("""
    import os, sys, time
    from common.server import LlamaServer, LlamaServerConfig
    srv = LlamaServer(LlamaServerConfig(binary=sys.argv[1], model_path=sys.argv[2], slots=1, ctx_per_slot=256)).start()
    print(srv.proc.pid, flush=True)
    time.sleep(120)
""")


@pytest.fixture(scope="module")
def smol():
    from transformers import AutoTokenizer

    from common.llamacpp_build import server_binary
    from common.models import assemble_embedded, resolve_model
    from common.server import LlamaServer, LlamaServerConfig
    binary = server_binary()
    assert binary.is_file(), "llama-server is built by setup.sh (python -m common.llamacpp_build)"
    gguf = assemble_embedded("smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").path)
    srv = LlamaServer(LlamaServerConfig(binary=str(binary), model_path=str(gguf), slots=4, ctx_per_slot=512)).start()
    yield srv, tok, binary, gguf
    srv.stop()


def _ids(tok, text):
    msgs = [{"role": "user", "content": text}]
    return tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
               add_special_tokens=False)["input_ids"]


QUESTIONS = ["Write a Python function that adds two numbers.", "What is 7 times 8?",
             "Name three prime numbers.", "Write a haiku about the sea."]


def test_greedy_is_the_same_alone_and_in_a_batch(smol):
    from common.sampling import SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    params = SamplingParams(max_new_tokens=24, logprobs=True)
    ids = [_ids(tok, q) for q in QUESTIONS]
    alone = ServerClient(srv.url, concurrency=1).generate(ids[:1], params, [0])[0][0]
    batch = ServerClient(srv.url, concurrency=4).generate(ids, params, [0, 1, 2, 3])
    again = ServerClient(srv.url, concurrency=4).generate(ids[::-1], params, [3, 2, 1, 0])
    assert batch[0][0].token_ids == alone.token_ids and batch[0][0].text == alone.text
    assert [c[0].token_ids for c in batch] == [c[0].token_ids for c in again[::-1]]


def test_sampled_seeds_give_the_same_samples_on_resume(smol):
    from common.sampling import SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    params = SamplingParams(n=2, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=3)
    ids = [_ids(tok, q) for q in QUESTIONS[:3]]
    full = ServerClient(srv.url, concurrency=4).generate(ids, params, [0, 1, 2])
    resumed = ServerClient(srv.url, concurrency=4).generate(ids[1:], params, [1, 2])
    assert [[c.text for c in s] for s in full[1:]] == [[c.text for c in s] for s in resumed]
    assert full[0][0].text != full[0][1].text or full[0][0].token_ids != full[0][1].token_ids


def test_stop_strings_cut_the_text(smol):
    from common.sampling import SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    free = ServerClient(srv.url).generate([_ids(tok, QUESTIONS[0])], SamplingParams(max_new_tokens=48), [0])[0][0]
    assert "\n" in free.text
    stop = free.text[free.text.index("\n"):][:3]
    cut = ServerClient(srv.url).generate([_ids(tok, QUESTIONS[0])], SamplingParams(max_new_tokens=48, stop=(stop,)),
                                         [0])[0][0]
    assert cut.text == free.text[:free.text.index(stop)] and cut.finish_reason == "stop"


def test_logprobs_match_the_fp32_forward_pass(smol):
    """llama.cpp runs the GGUF's quantised dot products; the fp32 path the dequantised weights.
    Per generated token the log-probabilities agree within 0.1 nats on average and 0.5 at most."""
    import torch
    from transformers import AutoModelForCausalLM

    from common.models import resolve_model
    from common.sampling import SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    ids = _ids(tok, QUESTIONS[0])
    c = ServerClient(srv.url).generate([ids], SamplingParams(max_new_tokens=24, logprobs=True), [0])[0][0]
    model = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m-instruct").path, dtype=torch.float32)
    diff = (_fp32_logprobs(model, ids, c.token_ids) - torch.tensor(c.logprobs)).abs()
    assert len(c.logprobs) == len(c.token_ids) > 5
    assert float(diff.mean()) < 0.1 and float(diff.max()) < 0.5, diff


def test_no_server_is_left_when_its_parent_is_killed(smol):
    _, _, binary, gguf = smol
    parent = subprocess.Popen([sys.executable, "-c", KILL_PARENT, str(binary), str(gguf)], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    os.kill(child, 0)                       # the server runs
    parent.send_signal(signal.SIGKILL)      # a crash: no atexit, no cleanup code runs
    parent.wait()
    for _ in range(100):
        if not _running(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"llama-server pid {child} outlived its parent")


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_server_that_does_not_answer_is_one_line_error():
    from common.sampling import SamplingParams
    from common.server import ServerClient, ServerError, free_port
    with pytest.raises(ServerError, match="does not answer"):
        ServerClient(f"http://127.0.0.1:{free_port()}").generate([[1, 2]], SamplingParams(max_new_tokens=2), [0])
    with pytest.raises(ServerError, match="no OpenAI-compatible server answers"):
        ServerClient(f"http://127.0.0.1:{free_port()}").check()


def test_a_completion_slower_than_the_timeout_names_the_flag():
    """A server that is up but slower than --server-timeout: the error says which flag to raise,
    not that nothing answers (a bench phase once stopped on this after 46 minutes)."""
    import http.server
    import threading
    import time

    from common.sampling import SamplingParams
    from common.server import ServerClient, ServerError

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            time.sleep(1.5)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = ServerClient(f"http://127.0.0.1:{httpd.server_address[1]}", timeout=0.3)
        with pytest.raises(ServerError, match=r"longer than 0.3 s; raise --server-timeout"):
            client.generate([[1, 2]], SamplingParams(max_new_tokens=2), [0])
    finally:
        httpd.shutdown()


def test_port_in_use_is_refused(smol):
    from common.server import LlamaServer, LlamaServerConfig, ServerError
    srv, _, binary, gguf = smol
    with pytest.raises(ServerError, match=f"port {srv.port} is in use"):
        LlamaServer(LlamaServerConfig(binary=str(binary), model_path=str(gguf), port=srv.port)).start()


def _llama_server_pids() -> set[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"llama-server" in (d / "cmdline").read_bytes().split(b"\0")[0] and _running(int(d.name)):
                    pids.add(int(d.name))
            except OSError:
                pass
    return pids


def test_eval_raw_on_the_llamacpp_backend_resumes_and_leaves_no_server(tmp_path):
    """The whole pipeline (render -> server -> extract -> sandbox -> result) on --backend llamacpp;
    a rerun generates nothing; the server is gone after each invocation."""
    before = _llama_server_pids()
    cmd = [sys.executable, "evals/eval_raw.py", "--model", "smollm2-135m-instruct", "--backend", "llamacpp",
           "--limit", "2", "--max-new-tokens", "48", "--server-slots", "2", "--server-ctx", "1024",
           "--out-dir", str(tmp_path), "--run-name", "r", "--quiet"]
    repo = Path(__file__).resolve().parent.parent
    for i in range(2):
        p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        res = json.loads((tmp_path / "r" / "result.json").read_text())
        assert res["model"]["backend_requested"] == "llamacpp"
        assert res["timings"]["tasks_generated_this_invocation"] == (2 if i == 0 else 0)
        assert _llama_server_pids() <= before
    rows = [json.loads(line) for line in (tmp_path / "r" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["n_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in rows)


def test_llamacpp_refuses_a_checkpoint_it_cannot_serve(tmp_path):
    from common.results import InputError
    from common.server import gguf_path

    @dataclass
    class R:
        ref: str
        kind: str
    with pytest.raises(InputError, match="GGUF models"):
        gguf_path(R("Qwen/Qwen2.5-7B", "hub"))


@pytest.mark.parametrize("kw,needle", [({"backend": "server"}, "needs --server-url"),
                                       ({"backend": "hf", "server_url": "http://x"}, "goes with --backend server"),
                                       ({"server_slots": 0}, "--server-slots"),
                                       ({"server_timeout": 0}, "--server-timeout")])
def test_model_config_rejects_contradictions(kw, needle):
    from common.results import InputError
    from common.runtime import ModelConfig
    with pytest.raises(InputError, match=needle):
        ModelConfig(model="m", **kw)


def test_server_url_backend_gives_what_the_client_gives(smol):
    """--server-url: the same rendering, tokens and seeds as the managed server path."""
    from common.models import resolve_model
    from common.runtime import ModelConfig
    from common.sampling import LLM, SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    resolved = resolve_model("smollm2-135m-instruct")
    llm = LLM(resolved, ModelConfig(model=resolved.ref, server_url=srv.url, backend="server", server_slots=2))
    prompts = [llm.chat_prompt([{"role": "user", "content": q}]) for q in QUESTIONS[:2]]
    params = SamplingParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=12, seed=5)
    got = llm.generate(prompts, params, progress=False, seed_keys=[10, 11])
    want = ServerClient(srv.url).generate([_ids(tok, q) for q in QUESTIONS[:2]], params, [10, 11])
    assert [[c.text for c in s] for s in got] == [[c.text for c in s] for s in want]
    assert llm.server is None   # nothing to stop: the user runs this server


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    """A LoRA adapter for SmolLM2 (rank 4 on q/k/v/o) whose B matrices are seeded noise, large
    enough to change greedy outputs; peft's own save format."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from common.models import resolve_model
    out = tmp_path_factory.mktemp("lora")
    model = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m-instruct").path, dtype=torch.float32)
    torch.manual_seed(0)                                   # lora_A's initialisation
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    model.save_pretrained(out)
    return out


def _fp32_logprobs(model, ids: list[int], gen: list[int]) -> "torch.Tensor":
    """Log-probabilities of the generated tokens ``gen`` after ``ids`` under the fp32 ``model``."""
    import torch
    with torch.inference_mode():
        logits = model(torch.tensor([ids + gen])).logits[0, len(ids) - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(gen)[:, None])[:, 0]


def test_lora_adapter_on_llamacpp_changes_outputs_as_the_torch_path_does(smol, tiny_lora):
    """The adapter converted to GGUF (once, cached) and applied by llama-server: its greedy tokens
    differ from the base model's, and their log-probabilities agree with the fp32 model carrying
    the same adapter (tolerance of the base-model test), at least three times closer on average
    than the fp32 base model's."""
    import torch

    from common.llamacpp_build import lora_gguf
    from common.models import resolve_model
    from common.sampling import LLM, SamplingParams
    from common.server import ServerClient
    srv, tok, *_ = smol
    params = SamplingParams(max_new_tokens=24, logprobs=True)
    ids = [_ids(tok, q) for q in QUESTIONS[:2]]
    base = [c[0].token_ids for c in ServerClient(srv.url, concurrency=2).generate(ids, params, [0, 1])]
    llm = LLM(resolve_model("smollm2-135m-instruct"), backend="llamacpp", adapter=str(tiny_lora), server_slots=2,
              server_ctx=512)
    try:
        assert llm.server.cfg.lora and llm.server.cfg.lora[0].endswith(".gguf")
        tuned = [c[0] for c in llm.client.generate(ids, params, [0, 1])]
    finally:
        llm.close()
    assert not llm.server.alive()
    assert [c.token_ids for c in tuned] != base
    from common.models import load_model
    fp32 = {a: load_model(resolve_model("smollm2-135m-instruct"), dtype="float32", adapter=a)[0]
            for a in (str(tiny_lora), None)}
    for prompt, c in zip(ids, tuned):
        got = torch.tensor(c.logprobs)
        with_adapter = (_fp32_logprobs(fp32[str(tiny_lora)], prompt, c.token_ids) - got).abs()
        without = (_fp32_logprobs(fp32[None], prompt, c.token_ids) - got).abs()
        assert float(with_adapter.mean()) < 0.1 and float(with_adapter.max()) < 0.5, with_adapter
        assert float(without.mean()) > 3 * float(with_adapter.mean()) and float(without.max()) > 0.5, without
    r = resolve_model("smollm2-135m-instruct")
    assert lora_gguf(tiny_lora, r.path, r.file_sha256) == Path(llm.server.cfg.lora[0])   # cached: same file


def test_an_adapter_that_cannot_be_converted_is_one_line_error(tmp_path):
    from common.llamacpp_build import lora_gguf
    from common.models import resolve_model
    from common.results import InputError
    r = resolve_model("smollm2-135m-instruct")
    with pytest.raises(InputError, match="not a peft LoRA adapter directory"):
        lora_gguf(tmp_path, r.path, r.file_sha256)
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="could not convert it"):
        lora_gguf(tmp_path, r.path, r.file_sha256)
