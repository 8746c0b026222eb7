"""Build llama.cpp's ``llama-server`` once, from the pinned PyPI source, into a cache.

The source is the ``llama-cpp-python`` sdist (MIT), pinned by version and sha256; it carries the
whole llama.cpp tree in ``vendor/llama.cpp``. The build is Release with ``GGML_NATIVE=ON`` (the
kernels for this CPU's instruction sets), no network features, no web UI. It lands in
``$SELFIMPROVE_CACHE/llama.cpp/<sdist sha256 prefix>-<CPU flags hash>/bin/`` and is reused:
a second call returns at once. About 10 minutes on 2 cores the first time.

LoRA adapters: llama-server applies GGUF adapters (``--lora``). :func:`lora_gguf` converts a peft
adapter directory with llama.cpp's own ``convert_lora_to_gguf.py`` from the same pinned source
(kept beside the binary in ``convert/``), against the base model's checkpoint directory, once:
the file is cached under ``$SELFIMPROVE_CACHE/lora-gguf/`` by the hash of the adapter's weights
and config, the base weights and the source.

    python -m common.llamacpp_build          # build if needed, print the binary's path
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from common.models import cache_root
from common.results import file_sha256

log = logging.getLogger(__name__)

SDIST = "llama-cpp-python==0.3.36"
SDIST_FILE = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TARGETS = ("llama-server",)
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF")


class BuildError(RuntimeError):
    pass


def cpu_flags_key() -> str:
    """A short hash of this CPU's feature flags: a native build only runs where they match."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = os.uname().machine
    return hashlib.sha256(flags.encode()).hexdigest()[:8]


def build_dir() -> Path:
    return cache_root() / "llama.cpp" / f"{SDIST_SHA256[:12]}-{cpu_flags_key()}"


def server_binary() -> Path:
    return build_dir() / "bin" / "llama-server"


def _fetch_sdist(dest: Path) -> Path:
    path = dest / SDIST_FILE
    if not path.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        SDIST, "-d", str(dest)], check=True)
    got = file_sha256(path)
    if got != SDIST_SHA256:
        path.unlink()
        raise BuildError(f"{SDIST_FILE}: sha256 {got[:12]}… is not the pinned {SDIST_SHA256[:12]}…; removed it")
    return path


CONVERTER = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir() -> Path:
    return build_dir() / "convert"


def ensure_converter() -> Path:
    """llama.cpp's LoRA converter and what it imports, extracted once from the pinned sdist."""
    out = converter_dir()
    if (out / CONVERTER[0]).is_file():
        return out
    root = build_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tmp = Path(tmp)
        with tarfile.open(_fetch_sdist(root)) as tf:
            prefix = f"{SDIST_FILE[:-len('.tar.gz')]}/vendor/llama.cpp/"
            members = [m for m in tf.getmembers() if m.name.startswith(prefix)
                       and any(m.name[len(prefix):] == c or (c.endswith("/") and m.name[len(prefix):].startswith(c))
                               for c in CONVERTER)]
            tf.extractall(tmp, members=members, filter="data")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp / prefix, out)
    return out


def _adapter_key(adapter: Path) -> str:
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        h.update(name.encode() + file_sha256(adapter / name).encode())
    return h.hexdigest()


def lora_gguf(adapter: str | Path, base_dir: str | Path, base_sha256: str | None) -> Path:
    """The GGUF of the peft LoRA adapter ``adapter`` for the base checkpoint ``base_dir`` (float32,
    cached; converted the first time). An adapter that cannot be converted is an InputError."""
    from common.results import InputError
    adapter = Path(adapter)
    missing = [n for n in ("adapter_config.json", "adapter_model.safetensors") if not (adapter / n).is_file()]
    if missing:
        raise InputError(f"--adapter {adapter}: not a peft LoRA adapter directory (no {', '.join(missing)})")
    key = f"{_adapter_key(adapter)[:16]}-{(base_sha256 or 'nobase')[:12]}-{SDIST_SHA256[:8]}"
    out = cache_root() / "lora-gguf" / f"{key}.gguf"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    conv = ensure_converter()
    tmp = out.with_suffix(".tmp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(conv / "gguf-py"), str(conv)]), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(conv / CONVERTER[0]), "--base", str(base_dir), "--outfile", str(tmp),
                        "--outtype", "f32", str(adapter)], capture_output=True, text=True, env=env)
    if p.returncode or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        why = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"--adapter {adapter}: llama.cpp's {CONVERTER[0]} could not convert it ({why}); "
                         f"use --backend int8 or hf for this adapter")
    os.replace(tmp, out)
    log.info("converted %s to %s", adapter, out)
    return out


def ensure_llama_server() -> Path:
    """The cached llama-server binary, built first if missing."""
    binary = server_binary()
    if binary.is_file():
        ensure_converter()
        return binary
    root = build_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tmp = Path(tmp)
        sdist = _fetch_sdist(root)
        with tarfile.open(sdist) as tf:
            tf.extractall(tmp, filter="data")
        src = next(tmp.glob("llama_cpp_python-*")) / "vendor" / "llama.cpp"
        out = tmp / "build"
        jobs = str(os.cpu_count() or 1)
        log.info("building llama-server from %s (once; ~10 min on 2 cores)", SDIST)
        for cmd in (["cmake", "-S", str(src), "-B", str(out), *CMAKE_FLAGS],
                    ["cmake", "--build", str(out), "-j", jobs, "--target", *TARGETS]):
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode:
                raise BuildError(f"llama.cpp build failed ({' '.join(cmd[:3])} …): {p.stderr[-800:].strip()}; "
                                 f"needs cmake and a C++17 compiler")
        (root / "bin").mkdir(exist_ok=True)
        for t in TARGETS:
            shutil.copy2(out / "bin" / t, root / "bin" / (t + ".tmp"))
            os.replace(root / "bin" / (t + ".tmp"), root / "bin" / t)
    ensure_converter()
    return binary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(ensure_llama_server())
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
