"""The training scripts on the device they are given: CPU here (CI), and CUDA with bf16 mixed
precision, gradient checkpointing and ``accelerate launch`` where torch sees a GPU (skipped
otherwise).

The model is a tiny randomly initialised Llama-architecture checkpoint with a byte-level BPE
tokenizer trained on the pairs file itself, both built in the test: no model file has to travel
to a GPU machine, and the test checks the code path (device placement, mixed precision, the
adapter written and changed), not what the model learns. The runs on real models are the
committed results/ directories."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAIRS = REPO / "data" / "pairs_boot_qwen05b.jsonl"
PREFS = REPO / "data" / "preference_external_he-chat_n16.jsonl"
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _cuda(), reason="no CUDA device"))]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama checkpoint (hidden 64) and a 2,000-token BPE tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    out = tmp_path_factory.mktemp("tiny")
    texts = [json.dumps(json.loads(line)) for line in PAIRS.read_text().splitlines()[:40]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    import torch
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def _run(args: list[str], launch: list[str] | None = None) -> subprocess.CompletedProcess:
    import os
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, *(launch or []), *args, "--quiet"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def _device_flags(device: str) -> list[str]:
    return ["--device", device] + (["--precision", "bf16", "--gradient-checkpointing"] if device == "cuda" else [])


def _check_adapter(out: Path, device: str, steps: int) -> dict:
    """The run's stats name the device and precision, its losses are finite, and the adapter's
    B matrices (zero at initialisation) have moved."""
    from safetensors.torch import load_file
    res = json.loads((out / "result.json").read_text())
    stats = res["stats"]
    assert stats["device"].startswith(device) and stats["optimizer_steps"] == steps
    assert stats["precision"] == ("bf16" if device == "cuda" else "fp32")
    assert stats["gradient_checkpointing"] == (device == "cuda")
    assert math.isfinite(stats["first_loss"]) and math.isfinite(stats["final_loss"])
    weights = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and any(float(w.abs().max()) > 0 for w in lora_b)
    return res


@pytest.mark.parametrize("device", DEVICES)
def test_sft_on_pairs_trains_on_the_device(tiny_model, tmp_path, device):
    out = tmp_path / "sft"
    _run(["recipe/train_on_pairs.py", "--model", str(tiny_model), "--pairs", str(PAIRS), "--out", str(out),
          "--max-steps", "3", "--grad-accum", "2", "--lr", "1e-3", "--max-length", "512", *_device_flags(device)])
    res = _check_adapter(out, device, 3)
    assert res["stats"]["processes"] == 1


@pytest.mark.parametrize("device", DEVICES)
def test_dpo_trains_on_the_device(tiny_model, tmp_path, device):
    out = tmp_path / "dpo"
    _run(["recipe/train_preference.py", "--method", "dpo", "--model", str(tiny_model), "--pairs", str(PREFS),
          "--out", str(out), "--max-steps", "2", "--grad-accum", "2", "--lr", "1e-3", "--max-length", "512",
          *_device_flags(device)])
    _check_adapter(out, device, 2)


@pytest.mark.skipif(not _cuda(), reason="no CUDA device")
def test_accelerate_launch_bf16_on_the_gpu(tiny_model, tmp_path):
    out = tmp_path / "launched"
    launch = ["-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--mixed_precision", "bf16", "--dynamo_backend", "no"]
    _run(["recipe/train_on_pairs.py", "--model", str(tiny_model), "--pairs", str(PAIRS), "--out", str(out),
          "--max-steps", "2", "--grad-accum", "1", "--lr", "1e-3", "--max-length", "512", *_device_flags("cuda")],
         launch)
    _check_adapter(out, "cuda", 2)
