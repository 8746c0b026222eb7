"""The math-verify worker of common.answer_check (run as ``python -m common._answer_worker``).

Reads one JSON request per line on stdin (``gold``, ``answer``, ``text``, ``mv_timeout_s``),
answers one JSON verdict per line (:func:`common.answer_check.verify_in_worker`, in this
process's main thread, where math-verify's ``signal.alarm`` works). The first line it writes
is ``{"ready": true}`` once math-verify is imported. It dies with its parent
(``PR_SET_PDEATHSIG``), exits at end of input, and its memory is capped (``RLIMIT_AS``), so an
answer that asks sympy for a huge number fails instead of filling the machine; the parent's
wall clock kills it when a check takes too long.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import signal
import sys

MEMORY_LIMIT_BYTES = 4 << 30


def main() -> int:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    out = os.fdopen(os.dup(1), "w")   # replies only; anything printed by libraries goes to stderr
    os.dup2(2, 1)
    logging.disable(logging.CRITICAL)
    import math_verify  # noqa: F401 - the import is the start-up cost, paid before "ready"
    from common.answer_check import verify_in_worker
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = verify_in_worker(req["gold"], req["answer"], req["text"], req["mv_timeout_s"])
        except MemoryError:
            reply = {"status": "timeout", "how": "math_verify", "gold_parsed": [], "answer_parsed": []}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
