"""Training through TRL (common/training.py, common/lora.py's train_adapter): the masked chat
format's labels against a hand-built example (and TRL's collator keeps them), the flags'
mapping onto TrainingArguments, the label-position-only LM head on CPU, checkpoints and resume,
the earlier loop behind ``--trainer loop``, and ``accelerate launch --num_processes 1`` on a
tiny setting (SmolLM2-135M on CPU)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.lora import IGNORE_INDEX, TrainConfig, encode_chat_masked
from common.results import InputError

REPO = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
SMALL = "smollm2-135m-instruct"

# a pair small enough to write its whole chat rendering by hand
PAIR = {"signature": "def inc(x):", "tests": ["assert inc(1) == 2"], "broken": "def inc(x):\n    return x",
        "error": "AssertionError", "fixed": "def inc(x):\n    return x + 1"}
PROMPT_TEXT = ("<|im_start|>system\nYou are a Python coder.<|im_end|>\n"
               "<|im_start|>user\nImplement: def inc(x):\n\nTests:\nassert inc(1) == 2\n\nMy attempt:\n```python\n"
               "def inc(x):\n    return x\n```\n\nError:\nAssertionError\n\nFix and output the corrected code only."
               "<|im_end|>\n<|im_start|>assistant\n")
ANSWER_TEXT = "```python\ndef inc(x):\n    return x + 1\n```<|im_end|>"


def _env():
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from common.models import resolve_model
    return AutoTokenizer.from_pretrained(resolve_model(SMALL).path)


@pytest.fixture
def one_thread():
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _hand_built(tok) -> tuple[list[int], list[int]]:
    p = tok(PROMPT_TEXT, add_special_tokens=False)["input_ids"]
    a = tok(ANSWER_TEXT, add_special_tokens=False)["input_ids"]
    return p + a, [IGNORE_INDEX] * len(p) + a


# --------------------------------------------------------------------------------------------
# the masked format against a hand-built example
# --------------------------------------------------------------------------------------------


def test_masked_chat_labels_equal_the_hand_built_example(tokenizer):
    ids, labels = _hand_built(tokenizer)
    ex = encode_chat_masked(tokenizer, PAIR, "You are a Python coder.", 1024)
    assert ex["input_ids"] == ids and ex["labels"] == labels
    k = ex["n_prompt_tokens"]
    assert tokenizer.decode(ids[:k]) == PROMPT_TEXT and tokenizer.decode(labels[k:]) == ANSWER_TEXT
    assert labels[:k] == [IGNORE_INDEX] * k and IGNORE_INDEX not in labels[k:]


@pytest.mark.model
def test_trl_collator_keeps_the_hand_built_labels(tokenizer, tmp_path, one_thread):
    """The pre-tokenized dataset goes through SFTTrainer's preparation and collator unchanged."""
    from trl import SFTConfig, SFTTrainer

    from common.lora import build_examples, peft_config, sft_dataset
    from common.models import load_model, resolve_model
    from common.training import trainer_args
    cfg = TrainConfig(max_steps=1)
    model, tok = load_model(resolve_model(SMALL))
    examples, counts = build_examples(tok, [PAIR], cfg)
    trainer = SFTTrainer(model=model, args=SFTConfig(**trainer_args(cfg, tmp_path, False)),
                         train_dataset=sft_dataset(examples), processing_class=tok, peft_config=peft_config(cfg))
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = _hand_built(tok)
    assert batch["input_ids"].tolist() == [ids] and batch["labels"].tolist() == [labels]
    assert counts["n_label_tokens"] == len(ids) - labels.count(IGNORE_INDEX)


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------


def test_trainer_args_map_the_paper_settings(tmp_path):
    from common.training import trainer_args
    kw = trainer_args(TrainConfig(device="cpu", seed=13, max_steps=7, save_steps=2, logging_steps=3), tmp_path, False)
    want = {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4, "num_train_epochs": 2,
            "max_steps": 7, "learning_rate": 1e-4, "lr_scheduler_type": "linear", "warmup_steps": 0.05,
            "weight_decay": 0.0, "max_grad_norm": 1.0, "seed": 13, "data_seed": 13, "logging_steps": 3,
            "save_strategy": "steps", "save_steps": 2, "bf16": False, "fp16": False, "use_cpu": True,
            "gradient_checkpointing": False, "max_length": 1024, "output_dir": str(tmp_path)}
    assert {k: kw[k] for k in want} == want
    assert trainer_args(TrainConfig(device="cpu"), tmp_path, False)["max_steps"] == -1
    assert trainer_args(TrainConfig(device="cpu"), tmp_path, False)["save_strategy"] == "no"
    assert trainer_args(TrainConfig(device="cpu", precision="bf16"), tmp_path, False)["bf16"] is True


@pytest.mark.parametrize("kw,needle", [
    ({"trainer": "loop", "resume": True}, "--resume needs --trainer trl"),
    ({"trainer": "loop", "save_steps": 2}, "--save-steps needs --trainer trl"),
    ({"trainer": "loop", "gradient_checkpointing": True}, "--gradient-checkpointing needs --trainer trl"),
    ({"trainer": "loop", "precision": "bf16"}, "--precision bf16/fp16 needs --trainer trl"),
    ({"trainer": "loop", "logging_steps": 5}, "--logging-steps needs --trainer trl"),
    ({"trainer": "keras"}, "--trainer must be one of"), ({"precision": "fp8"}, "--precision must be one of"),
    ({"logging_steps": 0}, "--logging-steps must be >= 1"), ({"save_steps": 0}, "--save-steps must be >= 1"),
])
def test_settings_the_trainer_cannot_honour_are_refused(kw, needle):
    with pytest.raises(InputError, match=needle):
        TrainConfig(**kw)


def test_identity_leaves_out_how_a_run_is_driven():
    a = TrainConfig(logging_steps=5, save_steps=2, gradient_checkpointing=True, resume=True)
    assert a.identity() == TrainConfig().identity()
    assert "resume" not in a.to_dict() and a.to_dict()["save_steps"] == 2
    assert TrainConfig(trainer="loop").identity() != TrainConfig().identity()


# --------------------------------------------------------------------------------------------
# the label-position-only LM head on CPU
# --------------------------------------------------------------------------------------------


@pytest.mark.model
def test_label_positions_only_gives_the_same_loss_on_cpu(tokenizer, one_thread):
    import torch
    import trl.trainer.utils as tu

    from common.lora import build_examples
    from common.lora_loop import collate
    from common.models import load_model, resolve_model
    from common.pairs import load_pairs
    from common.training import score_label_positions_only
    model, tok = load_model(resolve_model(SMALL))
    original = tu._use_triton
    tu.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    examples, _ = build_examples(tok, load_pairs(FIX / "pairs_valid.jsonl")[:2], TrainConfig())
    ids, labels, mask = collate(examples, tok.pad_token_id or 0)
    with torch.no_grad():
        every = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        try:
            score_label_positions_only()
            assert tu._use_triton(torch.device("cpu")) is True
            only = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        finally:
            tu._use_triton = original
        ref = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(only.loss, every.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(only.loss, ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(only.is_top1, every.is_top1)


# --------------------------------------------------------------------------------------------
# real training: checkpoints and resume, the loop, accelerate launch
# --------------------------------------------------------------------------------------------


def _train(out, cfg, pairs):
    from common.cli import RunOptions
    from common.evaluation import Invocation
    from common.lora import train_adapter
    from common.models import resolve_model
    return train_adapter(resolve_model(SMALL), pairs, {"sha256": "fixture", "count": len(pairs)}, cfg, out,
                         Invocation("test", [], {}), RunOptions(progress=False))


def _adapter_weights(d):
    from safetensors.torch import load_file
    return load_file(str(Path(d) / "adapter_model.safetensors"))


@pytest.mark.model
def test_interrupted_run_resumes_from_its_checkpoint_to_the_same_adapter(tmp_path, monkeypatch, one_thread):
    import torch
    from transformers import Trainer

    from common.pairs import load_pairs
    from common.rundir import release_run_dir
    pairs = load_pairs(FIX / "pairs_valid.jsonl")
    cfg = TrainConfig(max_steps=3, grad_accum=1, warmup_ratio=0.0, lr=1e-3, save_steps=1)
    straight = _train(tmp_path / "straight", cfg, pairs)
    original, calls = Trainer.training_step, []

    def crash_on_third(self, *a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *a, **kw)

    monkeypatch.setattr(Trainer, "training_step", crash_on_third)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _train(out, cfg, pairs)
    monkeypatch.setattr(Trainer, "training_step", original)
    work = tmp_path / "resumed.partial"
    assert not out.exists() and sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    release_run_dir(work)
    with pytest.raises(InputError, match="pass --resume to continue from it"):
        _train(out, cfg, pairs)
    with pytest.raises(InputError, match="other settings"):
        _train(out, TrainConfig(max_steps=3, grad_accum=1, warmup_ratio=0.0, lr=2e-3, resume=True), pairs)
    res = _train(out, TrainConfig(max_steps=3, grad_accum=1, warmup_ratio=0.0, lr=1e-3, save_steps=1, resume=True),
                 pairs)
    assert res["stats"]["resumed_from"] == "checkpoint-2" and res["stats"]["optimizer_steps"] == 3
    assert not work.exists()
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    want = [json.loads(x)["loss"] for x in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == pytest.approx(want, rel=1e-4)
    a, b = _adapter_weights(tmp_path / "straight"), _adapter_weights(out)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert straight["identity"] == res["identity"]


@pytest.mark.model
def test_trl_and_loop_train_the_same_examples(tmp_path, one_thread):
    """Both trainers through train_adapter: same outputs, same first loss (same first example
    under this seed, no warm-up), the loop's log as before."""
    from common.pairs import load_pairs
    pairs = load_pairs(FIX / "pairs_valid.jsonl")[:2]
    runs = {t: _train(tmp_path / t, TrainConfig(trainer=t, max_steps=2, grad_accum=1, warmup_ratio=0.0, lr=1e-3,
                                                epochs=1), pairs) for t in ("trl", "loop")}
    for t, res in runs.items():
        assert sorted(x.name for x in (tmp_path / t).iterdir() if x.name != "README.md") == \
            ["adapter_config.json", "adapter_model.safetensors", "result.json", "train_log.jsonl"]
        assert res["stats"]["trainer"] == t and res["stats"]["optimizer_steps"] == 2
        assert res["data"] == runs["trl"]["data"]
    lr = [[json.loads(x)["lr"] for x in (tmp_path / t / "train_log.jsonl").read_text().splitlines()] for t in runs]
    assert lr[0] == pytest.approx([1e-3, 5e-4]) and lr[1] == pytest.approx([1e-3, 5e-4])


@pytest.mark.model
def test_accelerate_launch_one_process_runs_train_on_pairs(tmp_path):
    out = tmp_path / "adapter"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "recipe/train_on_pairs.py", "--model", SMALL,
           "--pairs", str(FIX / "pairs_valid.jsonl"), "--out", str(out), "--max-steps", "1", "--grad-accum", "2",
           "--quiet"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(), timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    assert res["stats"]["trainer"] == "trl" and res["stats"]["processes"] == 1
    assert res["stats"]["optimizer_steps"] == 1 and res["stats"]["micro_batches"] == 2
    assert (out / "adapter_model.safetensors").is_file() and not (tmp_path / "adapter.partial").exists()
