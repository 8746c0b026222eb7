"""common/sandbox.py: one test per property of the threat model, plus HumanEval end to end.

Hostile programs must never pass, never harm the host or other samples, and never leave a
process behind (checked after every test by scanning /proc for the pool's uids and the workers'
descendants). Tests that need root isolation (a dropped uid, namespaces) skip without it.
"""
from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from common.sandbox import Job, Limits, SandboxPool
from common.sandbox_humaneval import (humaneval_job, measure_reference_limits, result_string, score_humaneval,
                                      time_limit_rule)

SECRET = "s3cr3t-" + uuid.uuid4().hex

# A miniature HumanEval task: every hostile completion below is appended to PROMPT.
PROMPT = "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n"
TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9
"""
GOOD = "    return a + b\n"
WRONG = "    return 0\n"


def he(completion: str, **kw) -> Job:
    return Job.humaneval(PROMPT + completion, TEST, "add", **kw)


@pytest.fixture(scope="module")
def pool():
    os.environ["SECRET_TOKEN"] = SECRET  # set before the workers start: they must not see it
    with SandboxPool(workers=2, timeout=3.0) as p:
        yield p
    os.environ.pop("SECRET_TOKEN", None)


@pytest.fixture(scope="module")
def isolated(pool):
    iso = pool.isolation
    if not (iso.get("uid_drop") and iso.get("net_ns") and iso.get("private_tmp")):
        pytest.skip(f"needs root isolation (uid drop, namespaces); active: {iso}")
    return pool


def _leftovers(pool) -> list[str]:
    import psutil
    uids = {u for u in pool.worker_uids if u is not None}
    worker_pids = {w.proc.pid for w in pool._workers}
    bad = []
    for p in psutil.process_iter(["pid", "uids", "ppid", "name", "status"]):
        try:
            if p.info["uids"] and p.info["uids"].real in uids:
                bad.append(f"{p.info['pid']} {p.info['name']} uid={p.info['uids'].real}")
            elif p.info["ppid"] in worker_pids:
                bad.append(f"{p.info['pid']} {p.info['name']} child of worker {p.info['ppid']}")
        except psutil.Error:
            pass
    return bad


@pytest.fixture(autouse=True)
def no_process_left_behind(request):
    yield
    if "pool" in request.fixturenames:
        p = request.getfixturevalue("pool")
        if p._workers:
            left = _leftovers(p)
            assert not left, f"processes left behind: {left}"


def _worker_pids(pool):
    return [w.proc.pid for w in pool._workers]


# ------------------------------------------------------------------------------------------------
# Basics: typed statuses, errors, modes
# ------------------------------------------------------------------------------------------------
def test_good_and_wrong(pool):
    good, wrong, name_err, syntax = pool.run_many([
        he(GOOD), he(WRONG), he("    return a + undefined_name\n"), he("    return (a +\n")])
    assert good.status == "passed" and good.passed and good.exit_code == 0
    assert wrong.status == "failed" and not wrong.passed
    assert wrong.error.endswith("AssertionError")
    assert 'File "tests.py", line 3, in check' in wrong.error
    assert "assert candidate(2, 3) == 5" in wrong.error
    assert name_err.error.splitlines()[-1] == "NameError: name 'undefined_name' is not defined"
    assert "_sandbox_worker" not in name_err.error and "<sandbox-guard>" not in name_err.error
    assert syntax.status == "failed" and "SyntaxError" in syntax.error
    assert result_string(good) == "passed" and result_string(wrong) == "failed: AssertionError"
    for r in (good, wrong):
        assert r.limits["timeout_s"] == 3.0 and r.limits["memory_mb"] == 2048
        assert r.limits["timeout_rule"] == "fixed pool default"
        assert "uid_drop" in r.isolation and "net_ns" in r.isolation


def test_error_is_short_and_has_no_temp_paths(pool):
    r = pool.run(he("    open('missing.txt')\n"))
    assert r.status == "failed"
    assert len(r.error.splitlines()) <= 5 and len(r.error) < 2500
    assert "FileNotFoundError" in r.error and "/tmp/job" not in r.error


def test_asserts_mode(pool):
    ok, bad = pool.run_many([Job.asserts("def sq(x):\n    return x * x\n", ["assert sq(3) == 9"]),
                             Job.asserts("def sq(x):\n    return x + x\n", ["assert sq(3) == 9"])])
    assert ok.passed and bad.status == "failed"


def test_outputs_mode(pool):
    code = "def f(xs, k):\n    return sorted(xs)[:k]\n"
    r = pool.run(Job.outputs(code, "f", ["([3, 1, 2], 2)", "([], 1)", "(None, 1)", "([5], 1)"]))
    assert r.passed
    assert r.outputs == ["[1, 2]", "[]", "!raise TypeError", "[5]"]
    slow = pool.run(Job.outputs("import time\ndef f(x):\n    if x: time.sleep(100)\n    return x\n",
                                "f", ["(0,)", "(1,)", "(0,)"], timeout=1.0))
    assert slow.status == "timeout" and slow.outputs == ["0", "!timeout", "!timeout"]


def test_expression_mode(pool):
    a, b, c, d = pool.run_many([Job.expression("3/4 + 2**3"), Job.expression("sqrt(16) * pi"),
                                Job.expression("__import__('os').system('id')"),
                                Job.expression("1/0")])
    assert a.passed and a.value == "8.75"
    assert b.passed and float(b.value) == pytest.approx(4 * 3.141592653589793)
    assert c.status == "failed" and "not allowed" in c.error
    assert d.status == "failed" and "ZeroDivisionError" in d.error


def test_test_code_without_check_is_a_harness_error(pool):
    r = pool.run(Job.humaneval(PROMPT + GOOD, "x = 1\n", "add"))
    assert r.status == "harness_error"


def test_harness_error_raised_by_the_test_code(pool):
    test = ("class HarnessError(Exception):\n    pass\n\n"
            "def check(candidate):\n    raise HarnessError('reference failed on input #0')\n")
    ours, fake = pool.run_many([
        Job.humaneval(PROMPT + GOOD, test, "add"),
        # A program cannot turn its failure into a harness error with a class of the same name.
        he("    raise HarnessError('not me')\nclass HarnessError(Exception):\n    pass\n")])
    assert ours.status == "harness_error" and "reference failed on input #0" in ours.error
    assert fake.status == "failed"


def test_job_validation():
    with pytest.raises(ValueError, match="unknown job mode"):
        Job(code="", mode="bogus")
    with pytest.raises(ValueError, match="entry_point"):
        Job(code="", mode="humaneval")
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout_s=0)


def test_pool_limits_bundle_and_timeout_override():
    """``limits`` sets every program's limits; ``timeout`` replaces its timeout; a job's own
    timeout and memory replace the pool's for that job only."""
    with SandboxPool(workers=1, long_job_slots=0, limits=Limits(memory_mb=512, nofile=64), timeout=2.5) as p:
        assert p.limits == Limits(timeout_s=2.5, memory_mb=512, nofile=64)
        a, b = p.run_many([he(GOOD), he(GOOD, timeout=4.0, memory_mb=1024)])
    assert (a.limits["timeout_s"], a.limits["memory_mb"], a.limits["nofile"]) == (2.5, 512, 64)
    assert (b.limits["timeout_s"], b.limits["memory_mb"], b.limits["nofile"]) == (4.0, 1024, 64)
    assert a.passed and b.passed and b.limits["timeout_rule"] == "per job"
    with SandboxPool(workers=1, long_job_slots=0) as p:
        assert p.limits == Limits()


def test_time_limit_rule():
    assert time_limit_rule(0.01) == 4.0                        # floor
    assert time_limit_rule(2.0) == 8.0                         # factor x reference
    assert time_limit_rule(100.0) == 60.0                      # cap
    assert time_limit_rule(0.3, floor=1.0, factor=5.0) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        time_limit_rule(-1.0)
    with pytest.raises(ValueError):
        time_limit_rule(1.0, floor=10.0, cap=5.0)


def test_measure_reference_limits(pool):
    tasks = [{"task_id": "t/0", "prompt": PROMPT, "canonical_solution": GOOD, "test": TEST,
              "entry_point": "add"},
             {"task_id": "t/1", "prompt": PROMPT, "canonical_solution": WRONG, "test": TEST,
              "entry_point": "add"}]
    lim = measure_reference_limits(tasks, pool, floor=1.0, factor=4.0, cap=9.0, repeats=2)
    assert lim["t/0"]["timeout_s"] == 1.0 and 0 < lim["t/0"]["ref_s"] < 0.25
    assert lim["t/1"]["timeout_s"] == 9.0 and "did not pass" in lim["t/1"]["rule"]
    r = score_humaneval({t["task_id"]: t for t in tasks}, [{"task_id": "t/0", "completion": GOOD}],
                        pool=pool, time_limits=lim)[0]
    assert r.passed and r.limits["timeout_s"] == 1.0 and r.limits["timeout_rule"].startswith("max(")


# ------------------------------------------------------------------------------------------------
# Faked passes
# ------------------------------------------------------------------------------------------------
def test_early_exit_never_passes(pool):
    res = pool.run_many([
        he(GOOD + "import sys\nsys.exit(0)\n"),
        he(GOOD + "import os\nos._exit(0)\n"),
        he("    raise SystemExit(0)\n"),
        he("    raise KeyboardInterrupt\n"),
        he("    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"),
        he(GOOD + "import atexit, os\natexit.register(lambda: os.write(1, b'passed'))\n"
           "raise BaseException('stop')\n"),
    ])
    assert [r.passed for r in res] == [False] * 6
    assert res[0].status == "failed" and res[0].error.endswith("SystemExit: 0")
    assert res[1].status == "crashed" and "exited with code 0 before the tests" in res[1].error
    assert res[2].status == "failed" and "SystemExit" in res[2].error
    assert res[3].status == "failed" and "KeyboardInterrupt" in res[3].error
    assert res[4].status == "crashed" and res[4].signal == signal.SIGKILL
    assert res[5].status == "failed" and "passed" not in res[5].stdout


def test_rebinding_builtins_cannot_fake_a_pass(pool):
    res = pool.run_many([
        he(WRONG + "import builtins\nbuiltins.abs = lambda x: 0\n"),
        he(WRONG + "import builtins\nbuiltins.print = lambda *a, **k: None\n"),
        he("    return 'x'\nimport builtins\nbuiltins.isinstance = lambda *a: True\n"
           "builtins.type = lambda *a: int\n"),
        he(WRONG + "import builtins\nbuiltins.AssertionError = StopIteration\n"
           "builtins.BaseException = StopIteration\n"),
        he(WRONG + "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
           "builtins.compile = lambda *a, **k: None\ndef check(candidate):\n    pass\n"),
    ])
    assert [r.status for r in res] == ["failed"] * 5, [(r.status, r.error) for r in res]
    # Control: with abs rebound but a correct function, the pristine abs makes it pass.
    assert pool.run(he(GOOD + "import builtins\nbuiltins.abs = lambda x: 10**9\n")).passed


def test_fake_reports_on_stdout_or_descriptors_never_pass(pool):
    fake = ("print('passed')\nprint('{\"status\": \"passed\"}')\n"
            "import os\n"
            "for fd in range(3, 200):\n"
            "    for text in (b'passed\\n', b'\\x00SBX1 ' + b'0' * 32 + b' end 1 7\\npassed\\n'):\n"
            "        try:\n            os.write(fd, text)\n        except OSError:\n            pass\n")
    wrong, good = pool.run_many([he(WRONG + fake), he(GOOD + fake)])
    assert wrong.status == "failed"
    assert good.status == "passed"  # garbage on the report pipe does not hide the real report
    assert "passed" in wrong.stdout


def test_redefined_check_is_ignored(pool):
    r = pool.run(he(WRONG + "def check(candidate):\n    return True\n"))
    assert r.status == "failed"


def test_always_equal_objects_fail(pool):
    res = pool.run_many([
        he("    class E:\n        def __eq__(self, o):\n            return True\n"
           "        def __sub__(self, o):\n            return 0\n    return E()\n"),
        he("    class I(int):\n        def __eq__(self, o):\n            return True\n"
           "        __hash__ = int.__hash__\n    return I(0)\n"),
        he("    class L(list):\n        def __eq__(self, o):\n            return True\n"
           "    return [L()]\n"),
        he("    class M(type):\n        def __eq__(cls, o):\n            return True\n"
           "        __hash__ = type.__hash__\n"
           "    class E(metaclass=M):\n        def __eq__(self, o):\n            return True\n"
           "    return E()\n"),
    ])
    assert [r.status for r in res] == ["failed"] * 4
    assert all("only plain builtin types" in r.error for r in res)
    # Plain nested values pass the guard.
    r = pool.run(Job.asserts("def f():\n    return {'a': [1, (2.0, None)], 'b': {3}, 4: b'x'}\n",
                             "assert f() == {'a': [1, (2.0, None)], 'b': {3}, 4: b'x'}"))
    assert r.passed


def test_monkeypatching_the_harness_fails(pool):
    always_eq = ("    class E:\n        def __eq__(self, o):\n            return True\n"
                 "        def __sub__(self, o):\n            return 0\n")
    res = pool.run_many([
        # Nuke everything reachable through sys.modules['__main__'] (the program's own module).
        he(WRONG + "import sys\nm = sys.modules['__main__']\n"
           "for k in list(vars(m)):\n    if not k.startswith('__'): setattr(m, k, None)\n"),
        # Replace every callable in every module dict that looks like harness code.
        he(WRONG + "import gc\nfor o in gc.get_objects():\n"
           "    if isinstance(o, dict) and ('child_main' in o or 'run_job' in o):\n"
           "        for k in list(o):\n"
           "            if callable(o[k]): o[k] = (lambda *a, **kw: None)\n"),
        # Disarm the return-type guard wherever gc finds it, then return an always-equal object.
        he(always_eq + "    return E()\nimport gc\nfor o in gc.get_objects():\n"
           "    if isinstance(o, dict) and 'make_guard' in o:\n"
           "        o['make_guard'] = lambda fn, *a: fn\n"
           "    if hasattr(o, 'make_guard') and not isinstance(o, type):\n"
           "        try:\n            o.make_guard = lambda fn, *a: fn\n"
           "        except Exception:\n            pass\n"),
        # Patch os.write/os._exit so the runner's report would be rewritten.
        he(WRONG + "import os\n_w = os.write\n"
           "os.write = lambda fd, b: _w(fd, bytes(b).replace(b'failed', b'passed'))\n"
           "os._exit = lambda code: None\n"),
    ])
    assert [r.passed for r in res] == [False] * 4, [(r.status, r.error) for r in res]


# ------------------------------------------------------------------------------------------------
# Harm to the host, other samples, and the harness
# ------------------------------------------------------------------------------------------------
def test_killing_parent_init_and_everything(isolated):
    pool = isolated
    before = _worker_pids(pool)
    res = pool.run_many([
        he(GOOD + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"),
        he(GOOD + "import os\nos.kill(1, 9)\n"),
        he(WRONG + "import os\nos.kill(-1, 9)\n"),
        he(GOOD + "import os\nos.killpg(os.getpgid(os.getppid()), 9)\n"),
    ])
    assert not any(r.passed for r in res)
    assert res[0].status == "failed" and "PermissionError" in res[0].error
    assert res[1].status == "failed" and "PermissionError" in res[1].error
    # kill(-1) reaches only the slot uid's own processes, and never the caller: it survives.
    assert res[2].status == "failed" and res[2].error.endswith("AssertionError")
    assert res[3].status == "failed" and "PermissionError" in res[3].error
    assert _worker_pids(pool) == before  # no worker was harmed
    assert all(r.passed for r in pool.run_many([he(GOOD)] * 4))


def test_fork_bomb_and_escaping_processes(isolated):
    pool = isolated
    res = pool.run_many([
        he("    import os\n    while True:\n        try:\n            os.fork()\n"
           "        except OSError:\n            pass\n", timeout=1.0),
        he(WRONG + "import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n"),
        he(WRONG + "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
           "        time.sleep(1000)\n    os._exit(0)\n"),
        he(GOOD + "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)\n"),
    ])
    assert [r.status for r in res[:3]] == ["timeout", "failed", "failed"]
    assert res[3].status == "passed"  # a correct program may fork; its children are killed after
    assert res[0].wall_s < 2.0


def test_memory_bombs(pool):
    res = pool.run_many([
        he("    x = bytearray(10**10)\n    return a + b\n"),
        he("    x = []\n    while True:\n        x.append(' ' * 10**6)\n", memory_mb=512),
        he("    return [0] * (10**9)\n"),
    ], )
    assert [r.status for r in res] == ["memory"] * 3, [(r.status, r.error) for r in res]
    assert "MemoryError" in res[0].error


def test_infinite_loops_in_python_and_c(pool):
    t0 = time.monotonic()
    res = pool.run_many([
        he("    while True:\n        pass\n", timeout=1.0),
        he("    import re\n    re.match('(a*)*b', 'a' * 50)\n", timeout=1.0),
        he("    return sum(range(10**12))\n", timeout=1.0),
        he("    import time\n    time.sleep(1000)\n", timeout=1.0),
        he("    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
           "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n",
           timeout=1.0),
    ])
    assert [r.status for r in res] == ["timeout"] * 5
    assert all(r.error.startswith("timed out after 1 s") for r in res)
    assert all(r.wall_s < 1.5 for r in res)
    assert time.monotonic() - t0 < 6


def test_writes_outside_the_job_dir(isolated):
    pool = isolated
    tag = uuid.uuid4().hex
    targets = [f"/work/main/pwned_{tag}.txt", f"/root/pwned_{tag}.txt", f"/pwned_{tag}.txt",
               f"/var/tmp/pwned_{tag}.txt", f"/dev/shm/pwned_{tag}.txt", f"/tmp/pwned_{tag}.txt"]
    code = (WRONG + "import os\nresults = []\n"
            f"for path in {targets!r}:\n"
            "    try:\n        open(path, 'w').write('x')\n        results.append('wrote ' + path)\n"
            "    except OSError as e:\n        results.append(type(e).__name__)\n"
            "open('local.txt', 'w').write('fine')\nprint(results, os.listdir('.'))\n")
    r = pool.run(he(code))
    assert r.status == "failed"
    # The private tmpfs directories accept the write; nothing reaches the host.
    assert "PermissionError" in r.stdout and "local.txt" in r.stdout
    for path in targets:
        assert not os.path.exists(path), path
    # The next program in the same worker sees none of it.
    r2 = pool.run_many([he(WRONG + f"import os\nprint(os.listdir('.'), os.path.exists('/tmp/pwned_{tag}.txt'))\n")] * 2)
    assert all("[] False" in r.stdout for r in r2)


@pytest.fixture
def victim_dir():
    d = Path(f"/sandbox-victim-{uuid.uuid4().hex[:8]}")
    (d / "sub").mkdir(parents=True)
    (d / "keep.txt").write_text("keep")
    (d / "sub" / "keep2.txt").write_text("keep")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def test_deleting_host_files(isolated, victim_dir):
    pool = isolated
    code = (WRONG + "import os, shutil\n"
            f"for f in (lambda: os.remove('{victim_dir}/keep.txt'), "
            f"lambda: shutil.rmtree('{victim_dir}'), lambda: os.rename('{victim_dir}/keep.txt', '{victim_dir}/x'),"
            f" lambda: shutil.rmtree('/work/main/tests')):\n"
            "    try:\n        f()\n    except OSError as e:\n        print(type(e).__name__)\n")
    r = pool.run(he(code))
    assert r.status == "failed" and r.stdout.count("PermissionError") == 4
    assert (victim_dir / "keep.txt").read_text() == "keep"
    assert (victim_dir / "sub" / "keep2.txt").exists()
    assert Path("/work/main/tests/test_sandbox.py").exists()


def test_network_is_unreachable(isolated):
    pool = isolated
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    try:
        code = (GOOD + "import socket\n"
                f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                "s.sendall(b'hello')\n")
        dns = GOOD + "import socket\nsocket.getaddrinfo('example.com', 80)\n"
        r, r_dns = pool.run_many([he(code), he(dns)])
        assert r.status == "failed" and "OSError" in r.error or "unreachable" in r.error
        assert r_dns.status == "failed"
        with pytest.raises(BlockingIOError):
            srv.accept()  # the listener saw no connection
    finally:
        srv.close()


def test_huge_outputs_are_capped(pool):
    t0 = time.monotonic()
    res = pool.run_many([
        he(GOOD + "print('x' * 10**9)\n", timeout=20.0, memory_mb=4096),
        he(GOOD + "import sys\nchunk = 'y' * 2**20\nfor _ in range(300):\n"
           "    sys.stdout.write(chunk)\n    sys.stderr.write(chunk)\n", timeout=20.0),
    ])
    assert [r.status for r in res] == ["passed", "passed"], [(r.status, r.error) for r in res]
    cap = res[0].limits["output_cap_bytes"]
    assert len(res[0].stdout) == cap and set(res[0].stdout) == {"x"}
    assert res[0].output_dropped_bytes >= 10**9 - cap
    assert len(res[1].stdout) == cap and len(res[1].stderr) == cap
    assert time.monotonic() - t0 < 20


def test_environment_is_scrubbed(pool):
    assert os.environ.get("SECRET_TOKEN") == SECRET
    code = (WRONG + "import os, glob\nprint(sorted(os.environ))\n"
            "print(os.environ.get('SECRET_TOKEN'))\n"
            "for p in glob.glob('/proc/[0-9]*/environ'):\n"
            "    try:\n        data = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            "    if b'SECRET_TOKEN' in data: print('leak', p)\n")
    r = pool.run(he(code))
    assert SECRET not in r.stdout and "leak" not in r.stdout
    assert "SECRET_TOKEN" not in r.stdout.splitlines()[0]


# ------------------------------------------------------------------------------------------------
# Pool behaviour
# ------------------------------------------------------------------------------------------------
def test_worker_restart(pool):
    w0 = pool._workers[0].proc.pid
    os.kill(w0, signal.SIGKILL)
    pool._workers[0].proc.wait()
    res = pool.run_many([he(GOOD), he(WRONG)] * 3)
    assert [r.status for r in res] == ["passed", "failed"] * 3
    assert pool._workers[0].proc.pid != w0


def test_long_jobs_do_not_block_short_ones():
    loop = he("    while True:\n        pass\n", timeout=2.0)
    short = [he(GOOD + "import time\nprint(time.time())\n")] * 10
    for slots, started_during_loop in ((1, True), (0, False)):
        with SandboxPool(workers=1, timeout=3.0, long_job_slots=slots, long_after_s=0.2) as p:
            t0 = time.time()
            res = p.run_many([loop] + short)
            assert [r.status for r in res] == ["timeout"] + ["passed"] * 10
            latest_start = max(float(r.stdout) for r in res[1:]) - t0
            # With a spare slot the short programs run beside the loop, otherwise after it.
            assert (latest_start < 1.5) is started_during_loop, latest_start
            assert _leftovers(p) == []


def test_one_and_many_workers_agree(pool):
    jobs = [he(c) for c in (GOOD, WRONG, "    return a - b\n", "    1/0\n", "    return (a +\n",
                            GOOD + "import sys\nsys.exit(0)\n", "    return {a, b}.pop() * 0 + a + b\n")]
    jobs *= 3
    with SandboxPool(workers=1, timeout=3.0, long_job_slots=0) as one:
        a = one.run_many(jobs)
    b = pool.run_many(jobs)
    assert [(r.status, r.error) for r in a] == [(r.status, r.error) for r in b]


def test_degraded_mode_without_a_uid_is_recorded():
    """The no-root path (user namespace, no per-slot uid), forced on: benign programs only, since
    without a separate uid a program could signal or write whatever the user owns."""
    with SandboxPool(workers=1, timeout=3.0, long_job_slots=0, _unprivileged=True) as p:
        assert p.isolation["uid_drop"] is False and p.worker_uids == [None]
        res = p.run_many([he(GOOD), he(WRONG), he("    while True:\n        pass\n", timeout=1.0),
                          he(GOOD + "import subprocess\nsubprocess.Popen(['sleep', '1000'], "
                                    "start_new_session=True)\n")])
        assert [r.status for r in res] == ["passed", "failed", "timeout", "passed"]
        assert res[0].isolation["uid_drop"] is False
        assert _leftovers(p) == []  # the escaped sleep was found as a descendant and killed


def test_isolation_recorded_and_uids_distinct(pool):
    assert len(set(pool.worker_uids)) == len(pool.worker_uids)
    r = pool.run(he(GOOD + "import os\nprint(os.getuid(), os.getcwd())\n"))
    if pool.isolation.get("uid_drop"):
        uid = int(r.stdout.split()[0])
        assert uid in pool.worker_uids and uid >= 61000
    for key in ("uid_drop", "net_ns", "mount_ns", "private_tmp", "no_new_privs"):
        assert key in r.isolation


# ------------------------------------------------------------------------------------------------
# HumanEval end to end
# ------------------------------------------------------------------------------------------------
def test_humaneval_canonical_pass_and_empty_bodies_fail(pool):
    from common.benchmarks import load_tasks
    tasks, _ = load_tasks("humaneval")
    jobs = [humaneval_job(t, t["canonical_solution"]) for t in tasks]
    jobs += [humaneval_job(t, "    pass\n") for t in tasks]
    res = pool.run_many(jobs)
    canon, empty = res[:len(tasks)], res[len(tasks):]
    bad = [(t["task_id"], r.status, r.error) for t, r in zip(tasks, canon) if not r.passed]
    assert not bad, bad
    assert not [t["task_id"] for t, r in zip(tasks, empty) if r.passed]
