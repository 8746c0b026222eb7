"""common/lora.py and recipe/train_on_pairs.py: settings, dataset formats (the masked format puts
-100 on every prompt token and only there), the schedule, and a tiny real training run on the
embedded SmolLM2-135M (LoRA weights change, base weights do not, the adapter loads back)."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.lora import (DEFAULT_TARGETS, IGNORE_INDEX, TrainConfig, add_lora_args, build_examples,
                         encode_chat_masked, encode_raw_markdown)
from common.lora_loop import collate, schedule_steps
from common.pairs import load_pairs, repair_answer

REPO = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
SMALL = "smollm2-135m-instruct"


def _env():
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")   # the machines are shared: one thread avoids oversubscription
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _run(script, args, **kw):
    return subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, env=_env(),
                          timeout=900, **kw)


# --------------------------------------------------------------------------------------------
# settings and flags
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_paper_constants():
    c = TrainConfig()
    assert (c.lora_rank, c.lora_alpha, c.lora_dropout, c.lora_targets) == (16, 32, 0.05, DEFAULT_TARGETS)
    assert DEFAULT_TARGETS == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert (c.epochs, c.lr, c.batch_size, c.grad_accum, c.warmup_ratio, c.max_length) == (2, 1e-4, 1, 4, 0.05, 1024)
    assert c.format == "chat-masked" and c.system == "You are a Python coder." and c.dtype == "float32"


def test_flags_round_trip_to_the_config():
    p = argparse.ArgumentParser()
    p.add_argument("--dtype", default="float32")
    add_lora_args(p)
    assert TrainConfig.from_args(p.parse_args([])) == TrainConfig()
    args = p.parse_args(["--lora-rank", "32", "--lora-alpha", "64", "--lora-targets", "q_proj, v_proj",
                         "--format", "raw-markdown", "--train-seed", "13", "--max-steps", "3"])
    c = TrainConfig.from_args(args)
    assert (c.lora_rank, c.lora_alpha, c.lora_targets, c.format, c.seed, c.max_steps) == \
        (32, 64, ("q_proj", "v_proj"), "raw-markdown", 13, 3)
    p2 = argparse.ArgumentParser()
    add_lora_args(p2, seed_flag="--seed", system_flag=False, lora_rank=32, lora_alpha=64)
    a2 = p2.parse_args(["--seed", "7"])
    assert (a2.lora_rank, a2.lora_alpha, a2.train_seed) == (32, 64, 7) and not hasattr(a2, "system")


@pytest.mark.parametrize("kw,flag", [
    ({"lora_rank": 0}, "--lora-rank"), ({"lora_alpha": 0}, "--lora-alpha"), ({"lora_dropout": 1.0}, "--lora-dropout"),
    ({"lora_targets": ()}, "--lora-targets"), ({"format": "markdown"}, "--format"), ({"epochs": 0}, "--epochs"),
    ({"lr": -1.0}, "--lr"), ({"batch_size": 0}, "--batch-size"), ({"grad_accum": 0}, "--grad-accum"),
    ({"warmup_ratio": 1.0}, "--warmup-ratio"), ({"max_length": 8}, "--max-length"), ({"max_steps": 0}, "--max-steps"),
    ({"device": "tpu"}, "--device"),
])
def test_bad_settings_raise_naming_the_flag(kw, flag):
    with pytest.raises(ValueError, match=flag):
        TrainConfig(**kw)


@pytest.mark.parametrize("n,kw,expected", [
    (40, {}, (40, 20, 1)),                                   # 40 pairs, accum 4, 2 epochs: 20 steps, 1 warm-up
    (10, {}, (10, 6, 1)),                                    # 3 steps per epoch (last partial), 2 epochs
    (100, {"warmup_ratio": 0.1}, (100, 50, 5)),
    (7, {"batch_size": 2, "grad_accum": 1, "epochs": 1}, (4, 4, 1)),
    (40, {"max_steps": 3}, (40, 3, 1)),
    (4, {"warmup_ratio": 0.0, "grad_accum": 1}, (4, 8, 0)),
])
def test_schedule_steps(n, kw, expected):
    assert schedule_steps(n, TrainConfig(**kw)) == expected


def test_collate_pads_to_the_longest_member_only():
    exs = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    ids, labels, mask = collate(exs, pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert labels.tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


# --------------------------------------------------------------------------------------------
# dataset formats, on the real tokenizer (cheap: no weights)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from common.models import resolve_model
    return AutoTokenizer.from_pretrained(resolve_model(SMALL).path)


@pytest.fixture(scope="module")
def pairs():
    return load_pairs(FIX / "pairs_valid.jsonl")


def test_chat_masked_labels_are_minus_100_on_every_prompt_token_and_only_there(tokenizer, pairs):
    for pair in pairs:
        ex = encode_chat_masked(tokenizer, pair, "You are a Python coder.", 1024)
        ids, labels, k = ex["input_ids"], ex["labels"], ex["n_prompt_tokens"]
        assert len(ids) == len(labels) and not ex["truncated"]
        assert all(l == IGNORE_INDEX for l in labels[:k])                   # every prompt token masked
        assert labels[k:] == ids[k:] and all(l != IGNORE_INDEX for l in labels[k:])   # nothing else masked
        prompt = tokenizer.decode(ids[:k])
        assert "You are a Python coder." in prompt and "Fix and output the corrected code only." in prompt
        assert prompt.endswith("<|im_start|>assistant\n")
        answer = tokenizer.decode(labels[k:])
        assert answer == repair_answer(pair["fixed"]) + "<|im_end|>"          # the turn plus its end token
        # the whole text is the chat template's rendering of the conversation (minus a trailing newline)
        from common.pairs import repair_messages
        full = tokenizer.apply_chat_template(repair_messages(pair), tokenize=False)
        assert tokenizer.decode(ids) == full.rstrip()


def test_raw_markdown_has_loss_on_every_token_and_no_padding(tokenizer, pairs):
    from common.pairs import raw_markdown_text
    for pair in pairs:
        ex = encode_raw_markdown(tokenizer, pair, 1024)
        assert ex["labels"] == ex["input_ids"] and ex["n_prompt_tokens"] == 0
        assert ex["input_ids"][-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ex["input_ids"][:-1]) == raw_markdown_text(pair)
        assert tokenizer.pad_token_id not in ex["input_ids"][:-1] or tokenizer.pad_token_id == tokenizer.eos_token_id


CONVERSATION = {"messages": [{"role": "system", "content": "Answer with a number."},
                             {"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"},
                             {"role": "assistant", "content": "3 + 4 = 7.\n#### 7"}]}


def test_conversation_records_mask_everything_but_the_last_assistant_turn(tokenizer):
    ex = encode_chat_masked(tokenizer, CONVERSATION, "ignored: the record has its own system", 1024)
    k = ex["n_prompt_tokens"]
    prompt, answer = tokenizer.decode(ex["input_ids"][:k]), tokenizer.decode(ex["labels"][k:])
    assert "Answer with a number." in prompt and "ignored" not in prompt and "How many?" in prompt
    assert all(l == IGNORE_INDEX for l in ex["labels"][:k])
    assert answer == "3 + 4 = 7.\n#### 7<|im_end|>"
    raw = encode_raw_markdown(tokenizer, CONVERSATION, 1024)
    assert tokenizer.decode(raw["input_ids"][:-1]) == "Tom has 3 apples and buys 4 more. How many?\n\n3 + 4 = 7.\n#### 7\n"
    with pytest.raises(Exception, match="assistant turn"):
        encode_chat_masked(tokenizer, {"messages": CONVERSATION["messages"][:2]}, None, 1024)


def test_truncation_counts_and_drops_examples_without_labels(tokenizer, pairs):
    exs, counts = build_examples(tokenizer, pairs, TrainConfig(max_length=120))
    assert counts["n_truncated"] >= 1
    assert all(len(e["input_ids"]) <= 120 for e in exs)
    exs, counts = build_examples(tokenizer, pairs, TrainConfig(max_length=40))
    assert counts["n_dropped_no_labels"] == len(pairs) and exs == []   # prompts alone are longer than 40
    exs, counts = build_examples(tokenizer, pairs, TrainConfig(max_length=40, format="raw-markdown"))
    assert counts["n_examples"] == len(pairs) and all(e["n_label_tokens"] == 40 for e in exs)


# --------------------------------------------------------------------------------------------
# a tiny real training run
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pairs):
    import torch

    from common.lora_loop import train_lora
    from common.models import load_model, resolve_model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resolved = resolve_model(SMALL)
        model, tok = load_model(resolved)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        cfg = TrainConfig(max_steps=2, grad_accum=1, warmup_ratio=0.0, lr=1e-3, seed=0)
        exs, _ = build_examples(tok, pairs[:2], cfg)
        steps = []
        peft_model, stats = train_lora(model, tok, exs, cfg, on_step=steps.append, progress=False)
        out = tmp_path_factory.mktemp("adapter")
        peft_model.save_pretrained(str(out))
        return {"resolved": resolved, "model": peft_model, "before": before, "stats": stats, "steps": steps,
                "dir": out, "cfg": cfg, "tok": tok, "exs": exs}
    finally:
        torch.set_num_threads(threads)


@pytest.mark.model
def test_training_changes_lora_weights_and_leaves_base_weights_alone(trained):
    m, before = trained["model"], trained["before"]
    lora = {n: p for n, p in m.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert any(float(p.detach().abs().sum()) > 0 for n, p in lora.items() if "lora_B" in n)   # B starts at zero
    n_base = 0
    for n, p in m.named_parameters():
        if "lora_" in n:
            continue
        key = n.replace("base_model.model.", "", 1).replace(".base_layer", "")
        assert key in before, n
        assert not p.requires_grad and bool((p.detach() == before[key]).all()), n
        n_base += 1
    assert n_base == len(before)
    targets = {n.split(".")[-4] for n in lora}        # ...<module>.lora_A.default.weight
    assert targets == set(DEFAULT_TARGETS)


@pytest.mark.model
def test_training_log_and_stats(trained):
    s, steps = trained["stats"], trained["steps"]
    assert s["optimizer_steps"] == 2 == len(steps) and s["warmup_steps"] == 0
    assert [r["step"] for r in steps] == [1, 2] and all(r["loss"] > 0 for r in steps)
    assert steps[0]["lr"] == pytest.approx(1e-3) and steps[1]["lr"] == pytest.approx(5e-4)   # linear decay
    assert s["final_loss"] == steps[-1]["loss"] and s["trainable_params"] < s["total_params"] / 20


@pytest.mark.model
def test_saved_adapter_loads_back_through_load_model(trained):
    import torch

    from common.models import check_adapter_dir
    check_adapter_dir(str(trained["dir"]))
    cfg = json.loads((trained["dir"] / "adapter_config.json").read_text())
    assert (cfg["r"], cfg["lora_alpha"], cfg["lora_dropout"], cfg["bias"]) == (16, 32, 0.05, "none")
    assert set(cfg["target_modules"]) == set(DEFAULT_TARGETS)
    ids = torch.tensor([trained["exs"][0]["input_ids"]])
    trained["model"].eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _compare_logits(trained, ids)
    finally:
        torch.set_num_threads(threads)


def _compare_logits(trained, ids):
    import torch

    from common.models import load_model
    with torch.no_grad():
        want = trained["model"](input_ids=ids).logits
        merged, _ = load_model(trained["resolved"], adapter=str(trained["dir"]))
        got = merged(input_ids=ids).logits
        base, _ = load_model(trained["resolved"])
        plain = base(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4)                 # the same function as the trained model
    assert not torch.allclose(plain, want, atol=1e-4)            # and not the base model's


# --------------------------------------------------------------------------------------------
# recipe/train_on_pairs.py
# --------------------------------------------------------------------------------------------


def test_train_on_pairs_rejects_a_malformed_file_and_writes_nothing(tmp_path):
    out = tmp_path / "adapter"
    p = _run("recipe/train_on_pairs.py", ["--model", SMALL, "--pairs", str(FIX / "pairs_malformed.jsonl"),
                                          "--out", str(out)])
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in p.stderr
    for n in (2, 3, 4, 5, 7, 8, 9, 10):
        assert f"line {n}:" in err[0]
    assert "line 1:" not in err[0] and "line 11:" not in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,needle", [
    (["--lora-rank", "0"], "--lora-rank must be >= 1"),
    (["--pairs", "/nonexistent.jsonl"], "no such file"),
    (["--model", "no-such-model"], "not an embedded alias"),
    (["--limit-pairs", "0"], "--limit-pairs must be >= 1"),
])
def test_train_on_pairs_bad_input_is_one_line(tmp_path, args, needle):
    base = ["--pairs", str(FIX / "pairs_valid.jsonl"), "--out", str(tmp_path / "o")]
    p = _run("recipe/train_on_pairs.py", base + args)
    assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_train_on_pairs_help_lists_every_flag():
    p = _run("recipe/train_on_pairs.py", ["--help"])
    assert p.returncode == 0
    for flag in ("--model", "--pairs", "--out", "--format", "--lora-rank", "--lora-alpha", "--lora-targets",
                 "--epochs", "--lr", "--batch-size", "--grad-accum", "--max-length", "--seed", "--dtype",
                 "--warmup-ratio", "--max-steps", "--overwrite"):
        assert flag in p.stdout, flag


@pytest.mark.model
def test_train_on_pairs_end_to_end_then_skip(tmp_path):
    out = tmp_path / "adapter"
    args = ["--model", SMALL, "--pairs", str(FIX / "pairs_valid.jsonl"), "--out", str(out), "--max-steps", "1",
            "--grad-accum", "2", "--seed", "7", "--quiet"]
    p = _run("recipe/train_on_pairs.py", args)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(x.name for x in out.iterdir() if x.name != "README.md") == \
        ["adapter_config.json", "adapter_model.safetensors", "result.json", "train_log.jsonl"]
    res = json.loads((out / "result.json").read_text())
    assert res["pairs"]["count"] == 4 and len(res["pairs"]["sha256"]) == 64
    assert res["train_config"]["seed"] == 7 and res["train_config"]["lora_rank"] == 16
    assert res["train_config"]["format"] == "chat-masked"
    assert res["stats"]["optimizer_steps"] == 1 and res["stats"]["micro_batches"] == 2
    assert res["stats"]["final_loss"] > 0 and res["data"]["n_examples"] == 4
    for k in ("git", "versions", "argv", "timings", "model"):
        assert k in res
    log_rows = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log_rows) == 1 and log_rows[0]["step"] == 1
    p2 = _run("recipe/train_on_pairs.py", args)                      # same run: skipped, untouched
    assert p2.returncode == 0 and "already trained" in p2.stdout
    p3 = _run("recipe/train_on_pairs.py", args[:-1] + ["--lr", "2e-4", "--quiet"])   # other settings: refused
    assert p3.returncode == 2 and "other settings" in p3.stderr


@pytest.mark.model
def test_label_only_lm_head_loss_equals_the_models_own_loss_and_gradients(tokenizer, pairs):
    """causal_lm_loss runs the LM head on label positions only; loss and LoRA gradients must match
    transformers' own loss on a padded, masked micro-batch."""
    import torch

    from common.lora import peft_config
    from common.lora_loop import causal_lm_loss
    from common.models import load_model, resolve_model
    from peft import get_peft_model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tok = load_model(resolve_model(SMALL))
        cfg = TrainConfig(seed=0)
        peft_model = get_peft_model(model, peft_config(cfg))
        for n, p in peft_model.named_parameters():       # B starts at zero: make the adapter matter
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.02)
        peft_model.eval()                                 # no LoRA dropout: both passes see the same function
        exs, _ = build_examples(tok, pairs[:3], cfg)
        ids, labels, mask = collate(exs, tok.pad_token_id or 0)
        assert (labels == IGNORE_INDEX).any() and (mask == 0).any()   # masked prompt and padding present
        grads = []
        for fn in (lambda: peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss,
                   lambda: causal_lm_loss(peft_model, ids, mask, labels)):
            peft_model.zero_grad(set_to_none=True)
            loss = fn()
            loss.backward()
            grads.append((float(loss), {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.grad is not None}))
        (l_ref, g_ref), (l_new, g_new) = grads
        assert l_new == pytest.approx(l_ref, rel=1e-5)
        assert g_ref.keys() == g_new.keys() and g_ref
        for n in g_ref:
            torch.testing.assert_close(g_new[n], g_ref[n], rtol=1e-4, atol=1e-6, msg=n)
    finally:
        torch.set_num_threads(threads)
