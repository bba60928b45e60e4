"""Run one command in a sandboxed subprocess: no network, a read-only view of only what it
needs, resource limits, a clean environment, killed with all its children at the wall clock.

The design (docs/sde-jobs.md, decision 0009):

- **Namespaces** (``isolation="namespaces"``): bubblewrap, or util-linux ``unshare`` plus a
  mount script when bubblewrap is missing. The job gets new network (loopback only), PID, IPC,
  UTS and mount namespaces. Its root is an empty tmpfs into which only the :class:`Mount`\\ s
  given are bound (read-only unless marked writable), plus ``/usr``, a private ``/tmp``, a
  fresh ``/proc`` and a minimal ``/dev``. When the runner is root the job switches to an
  unprivileged user (:data:`SANDBOX_UID`) with no capabilities and ``no_new_privs``: root is
  exempt from the kernel's process limit and owns every file.
- **Fallback** (``isolation="fallback"``): the command runs directly, with the same rlimits,
  a clean environment and its own process group. Network and filesystem are *not* isolated.
  Never chosen silently: the outcome says so, and ``isolation="namespaces"`` refuses to run.

Limits are rlimits (CPU seconds, address space, processes, file size, open files, no core
files), set in the child before ``exec`` so they bind the sandbox tool and everything under it;
the wall clock is ours: on expiry the whole process group gets SIGKILL, and with a PID
namespace the kernel kills every process left in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from carelight.sde.jobs.capabilities import (
    SANDBOX_GID,
    SANDBOX_UID,
    Backend,
    Capabilities,
    Isolation,
    detect_capabilities,
)

IsolationRequest = Literal["auto", "namespaces", "fallback"]
LimitHit = Literal["wall_clock", "cpu", "memory", "file_size", "processes", "disk"]

MiB = 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """Namespaces were required but this machine cannot provide them."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed command. Small values suit tests; defaults a job."""

    cpu_seconds: int = 600
    memory_bytes: int = 4096 * MiB  # address space (RLIMIT_AS)
    processes: int = 64  # processes and threads of the sandbox user (RLIMIT_NPROC)
    file_size_bytes: int = 512 * MiB  # largest file the command may write (RLIMIT_FSIZE)
    open_files: int = 256
    wall_seconds: float = 1800.0
    tmp_bytes: int = 256 * MiB  # size of the private /tmp (namespaces only)
    disk_bytes: int = 2048 * MiB  # total in the writable folders, checked twice a second
    disk_files: int = 10_000  # files and folders in the writable folders
    capture_bytes: int = 1 * MiB  # kept of stdout and of stderr each; the rest is counted

    def __post_init__(self) -> None:
        for name in (
            "cpu_seconds",
            "memory_bytes",
            "processes",
            "file_size_bytes",
            "disk_bytes",
            "disk_files",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)}")
        if self.wall_seconds <= 0:
            raise ValueError(f"Limits.wall_seconds must be positive, got {self.wall_seconds}")


@dataclass(frozen=True)
class Mount:
    """A host path made visible to the command at ``target`` (read-only unless writable)."""

    source: Path
    target: str
    writable: bool = False

    def __post_init__(self) -> None:
        if not PurePosixPath(self.target).is_absolute() or ".." in PurePosixPath(self.target).parts:
            raise ValueError(f"mount target must be an absolute path without '..': {self.target}")


@dataclass(frozen=True)
class Outcome:
    """What happened to one sandboxed command. Holds no output, only its sizes."""

    isolation: Isolation
    backend: Backend
    exit_code: int | None  # None when killed by a signal
    signal: str | None  # e.g. "SIGKILL"
    limit_hit: LimitHit | None  # best evidence of which limit ended it, if any
    started_at: str
    finished_at: str
    wall_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_bytes: int
    stdout_bytes: int
    stderr_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit_hit is None


def runtime_mounts() -> tuple[Mount, ...]:
    """The Python runtime, the virtual environment and Carelight's own code, read-only.

    Mounted at their own paths, so the interpreter's absolute symlinks and ``.pth`` files work
    unchanged. Nothing else of the host is visible (``/usr`` aside, which the sandbox adds).
    """
    import carelight

    paths = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(carelight.__file__).resolve().parent.parent,  # src/ of an editable install
    }
    paths = {p for p in paths if not p.is_relative_to("/usr")}
    # Drop paths inside another one (the venv's site-packages inside the venv, say).
    kept = sorted(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))
    return tuple(Mount(p, str(p)) for p in kept)


def python_executable() -> str:
    """The interpreter jobs run with: this venv's, which sees pandas and statsmodels."""
    return sys.executable


_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")
_DEV_NODES = ("null", "zero", "full", "random", "urandom")
_USR_SYMLINKS = (("usr/bin", "/bin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64"))
_USR_SYMLINKS += (("usr/sbin", "/sbin"),)
# Paths the sandbox builds itself; a mount may go below /tmp (a venv there), not on these.
_RESERVED = frozenset({"/", "/tmp", "/etc", "/bin", "/lib", "/lib64", "/sbin"})
_RESERVED_TREES = (PurePosixPath("/usr"), PurePosixPath("/proc"), PurePosixPath("/dev"))


def _clean_env(env: Mapping[str, str], tmp: str, extra_path: Sequence[str]) -> dict[str, str]:
    """The whole environment of the job: nothing is inherited from the runner."""
    path = [*extra_path, "/usr/local/bin", "/usr/bin", "/bin"]
    base = {
        "PATH": ":".join(path),
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        # One thread per maths library: threads count against the process limit, and
        # each OpenBLAS thread reserves address space.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    return {**base, **env}


class Sandbox:
    """A sandbox plan: the mounts and limits for commands run with :meth:`run`."""

    def __init__(
        self,
        mounts: Sequence[Mount],
        limits: Limits,
        *,
        isolation: IsolationRequest = "auto",
        capabilities: Capabilities | None = None,
    ) -> None:
        caps = capabilities or detect_capabilities()
        if isolation not in ("auto", "namespaces", "fallback"):
            raise ValueError(f"isolation must be auto, namespaces or fallback, not {isolation!r}")
        if isolation == "fallback":
            backend: Backend = "rlimits"
        elif caps.backend == "rlimits" and isolation == "namespaces":
            raise SandboxUnavailable(
                "namespaces required but unavailable: "
                + "; ".join(caps.notes)
                + " (install bubblewrap: apt-get install bubblewrap)"
            )
        else:
            backend = caps.backend
        targets = [m.target for m in mounts]
        if len(set(targets)) != len(targets):
            raise ValueError(f"two mounts share a target: {targets}")
        for t in map(PurePosixPath, targets):
            if str(t) in _RESERVED or any(t.is_relative_to(r) for r in _RESERVED_TREES):
                raise ValueError(f"mount target {t} is reserved for the sandbox itself")
        for m in mounts:
            if not m.source.exists():
                raise FileNotFoundError(f"mount source does not exist: {m.source}")
        self.mounts = tuple(mounts)
        self.limits = limits
        self.backend = backend
        self.isolation: Isolation = "fallback" if backend == "rlimits" else "namespaces"
        self.drop_to_uid = backend != "rlimits" and caps.running_as_root

    def path(self, target: str) -> str:
        """Where the command sees ``target``: the target itself, or in the fallback (no mount
        namespace) the host path it was mounted from."""
        if self.isolation == "namespaces":
            return target
        for m in sorted(self.mounts, key=lambda m: len(m.target), reverse=True):
            t = PurePosixPath(m.target)
            if PurePosixPath(target) == t or PurePosixPath(target).is_relative_to(t):
                return str(m.source / PurePosixPath(target).relative_to(t))
        raise ValueError(f"{target} is not inside any mount")

    def prepare_writable(self) -> None:
        """Give the sandbox user the writable mounts (it is not root)."""
        if not self.drop_to_uid:
            return
        for m in self.mounts:
            if m.writable:
                for root, dirs, files in os.walk(m.source):
                    for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                        os.lchown(name, SANDBOX_UID, SANDBOX_GID)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        stdout_path: Path,
        stderr_path: Path,
    ) -> Outcome:
        """Run ``argv`` (paths as the command sees them, see :meth:`path`) to completion or
        until a limit ends it. Its stdout and stderr go to the two files, capped."""
        self.prepare_writable()
        report_r, report_w = os.pipe()
        launched = [python_executable(), "-I", "-m", "carelight.sde.jobs.launch"]
        launched += [str(report_w), "--", *argv]
        try:
            with contextlib.ExitStack() as stack:
                if self.backend == "rlimits":
                    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="carelight-job-"))
                    full_argv = launched
                    run_cwd = self.path(cwd)
                else:
                    tmp = "/tmp"
                    if self.backend == "bwrap":
                        full_argv = self._bwrap_argv(launched, cwd)
                    else:
                        root = stack.enter_context(
                            tempfile.TemporaryDirectory(prefix="carelight-root-")
                        )
                        full_argv = self._unshare_argv(launched, cwd, root)
                    run_cwd = "/"
                job_env = _clean_env(env or {}, tmp, [str(Path(python_executable()).parent)])
                return self._execute(
                    full_argv, run_cwd, job_env, stdout_path, stderr_path, report_r, report_w
                )
        finally:
            for fd in (report_r, report_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- building the command line of each backend -------------------------------------------

    def _parents(self) -> list[str]:
        """Every directory above a mount target, parents first, so they can be created 0755
        (the sandbox user must be able to walk to its mounts)."""
        out: list[str] = []
        for m in self.mounts:
            for parent in reversed(PurePosixPath(m.target).parents):
                p = str(parent)
                if p != "/" and p not in out:
                    out.append(p)
        return out

    def _privilege_drop(self) -> list[str]:
        if not self.drop_to_uid:
            return []
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        return [
            setpriv,
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_GID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def _bwrap_argv(self, argv: Sequence[str], cwd: str) -> list[str]:
        caps = detect_capabilities()
        out = [caps.bwrap or "bwrap"]
        out += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        out += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
        if self.drop_to_uid:
            # Privileged bwrap (no user namespace): keep only what setpriv needs to become
            # the sandbox user; setpriv then drops those too.
            out += ["--cap-drop", "ALL"]
            out += [
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--cap-add",
                "CAP_SETPCAP",
            ]
        else:
            out += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        out += ["--ro-bind", "/usr", "/usr"]
        for src, dest in _USR_SYMLINKS:
            out += ["--symlink", src, dest]
        for f in _ETC_FILES:
            if os.path.exists(f):
                out += ["--ro-bind", f, f]
        out += ["--proc", "/proc", "--dev", "/dev"]
        out += ["--perms", "1777", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        for p in self._parents():
            if p not in ("/tmp", "/usr", "/proc", "/dev"):
                out += ["--perms", "0755", "--dir", p]
        for m in self.mounts:
            out += ["--bind" if m.writable else "--ro-bind", str(m.source), m.target]
        out += ["--chdir", cwd]
        return out + self._privilege_drop() + list(argv)

    def _unshare_argv(self, argv: Sequence[str], cwd: str, root: str) -> list[str]:
        """util-linux unshare running a mount script that builds the same view as bwrap."""
        caps = detect_capabilities()
        q = shlex.quote
        r = q(root)
        lines = [
            "set -eu",
            "mount --make-rprivate /",
            f"mount -t tmpfs -o mode=0755,size=16m carelight-root {r}",
            f"mkdir -p {r}/usr {r}/etc {r}/proc {r}/dev {r}/tmp",
            f"mount --rbind /usr {r}/usr",
            f"mount -o remount,bind,ro,nosuid,nodev {r}/usr",
            f"mount -t proc -o nosuid,nodev,noexec proc {r}/proc",
            f"mount -t tmpfs -o mode=1777,nosuid,nodev,size={self.limits.tmp_bytes} tmp {r}/tmp",
            f"mount -t tmpfs -o mode=0755,nosuid dev {r}/dev",
        ]
        for src, dest in _USR_SYMLINKS:
            lines.append(f"ln -s {q(src)} {r}{q(dest)}")
        for node in _DEV_NODES:
            lines += [f"touch {r}/dev/{node}", f"mount --bind /dev/{node} {r}/dev/{node}"]
        for f in _ETC_FILES:
            if os.path.exists(f):
                lines += [f"touch {r}{q(f)}", f"mount --bind {q(f)} {r}{q(f)}"]
                lines.append(f"mount -o remount,bind,ro {r}{q(f)}")
        for p in self._parents():
            lines.append(f"mkdir -p -m 0755 {r}{q(p)}")
        for m in self.mounts:
            dest = f"{r}{q(m.target)}"
            make = f"mkdir -p {dest}" if m.source.is_dir() else f"touch {dest}"
            lines += [make, f"mount --bind {q(str(m.source))} {dest}"]
            mode = "rw" if m.writable else "ro"
            lines.append(f"mount -o remount,bind,{mode},nosuid,nodev {dest}")
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        tail = [chroot, root, *self._privilege_drop(), "/usr/bin/env", f"--chdir={cwd}", *argv]
        lines.append("exec " + " ".join(q(a) for a in tail))
        return [
            caps.unshare or "unshare",
            "--net",
            "--pid",
            "--fork",
            "--mount",
            "--ipc",
            "--uts",
            "--kill-child",
            "/bin/sh",
            "-c",
            "\n".join(lines),
        ]

    # -- running ------------------------------------------------------------------------------

    def _set_limits(self) -> None:
        """In the child between fork and exec: the rlimits bind the sandbox tool and all below."""
        lim = self.limits
        soft_hard = {
            resource.RLIMIT_CPU: (lim.cpu_seconds, lim.cpu_seconds + 1),  # SIGXCPU, then SIGKILL
            resource.RLIMIT_AS: (lim.memory_bytes, lim.memory_bytes),
            resource.RLIMIT_NPROC: (lim.processes, lim.processes),
            resource.RLIMIT_FSIZE: (lim.file_size_bytes, lim.file_size_bytes),
            resource.RLIMIT_NOFILE: (lim.open_files, lim.open_files),
            resource.RLIMIT_CORE: (0, 0),
        }
        for which, value in soft_hard.items():
            resource.setrlimit(which, value)

    def _execute(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        stdout_path: Path,
        stderr_path: Path,
        report_r: int,
        report_w: int,
    ) -> Outcome:
        lim = self.limits
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=self._set_limits,
            start_new_session=True,  # its own process group, killed as one on timeout
            close_fds=True,
            pass_fds=(report_w,),
        )
        os.close(report_w)
        assert proc.stdout is not None and proc.stderr is not None
        captures = [
            _Capture(proc.stdout, stdout_path, lim.capture_bytes),
            _Capture(proc.stderr, stderr_path, lim.capture_bytes),
        ]
        for c in captures:
            c.start()
        stopped_for: LimitHit | None = None  # a limit we enforce ourselves
        status = 0
        usage = None
        reaped = False
        writable = [m.source for m in self.mounts if m.writable]
        next_disk_check = t0 + 0.5
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                now = time.monotonic()
                if now - t0 > lim.wall_seconds:
                    stopped_for = "wall_clock"
                elif writable and now >= next_disk_check:
                    next_disk_check = now + 0.5
                    used, count = _disk_use(writable)
                    if used > lim.disk_bytes or count > lim.disk_files:
                        stopped_for = "disk"
                if stopped_for:
                    _kill_group(proc.pid)
                    _, status, usage = os.wait4(proc.pid, 0)
                    reaped = True
                    break
                time.sleep(0.02)
        finally:
            if not reaped:  # interrupted: never leave the job behind
                _kill_group(proc.pid)
                with contextlib.suppress(ChildProcessError):
                    _, status, usage = os.wait4(proc.pid, 0)
            _kill_group(proc.pid)  # stragglers in the group (fallback: no PID namespace)
        wall = time.monotonic() - t0
        for c in captures:
            c.join(timeout=5)
            c.close()
        exit_code: int | None
        sig: int | None
        if os.WIFSIGNALED(status):
            exit_code, sig = None, os.WTERMSIG(status)
        else:
            exit_code, sig = os.WEXITSTATUS(status), None
        proc.returncode = -sig if sig else exit_code  # reaped by os.wait4, not by Popen
        if exit_code is not None and exit_code > 128:
            # The launcher reports a command killed by signal N as 128 + N.
            exit_code, sig = None, exit_code - 128
        report = _read_report(report_r)
        cpu_user = report.get("cpu_user_seconds", usage.ru_utime if usage else 0.0)
        cpu_sys = report.get("cpu_system_seconds", usage.ru_stime if usage else 0.0)
        max_rss = report.get("max_rss_bytes", usage.ru_maxrss * 1024 if usage else 0)
        limit_hit = stopped_for or _limit_hit(
            sig, exit_code, cpu_user + cpu_sys, lim, captures[1].tail
        )
        return Outcome(
            isolation=self.isolation,
            backend=self.backend,
            exit_code=exit_code,
            signal=signal.Signals(sig).name if sig else None,
            limit_hit=limit_hit,
            started_at=started_at,
            finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            wall_seconds=round(wall, 3),
            cpu_user_seconds=round(cpu_user, 3),
            cpu_system_seconds=round(cpu_sys, 3),
            max_rss_bytes=int(max_rss),
            stdout_bytes=captures[0].total,
            stderr_bytes=captures[1].total,
            stdout_truncated=captures[0].truncated,
            stderr_truncated=captures[1].truncated,
        )


def _read_report(fd: int) -> dict:
    """The launcher's usage report: the last JSON line on the pipe (the job is not given the
    pipe, but a same-user process could find it; the figures are accounting, not security)."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            data += chunk
            if len(data) > 65536:
                break
    for line in reversed(data.splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and all(isinstance(v, int | float) for v in report.values()):
            return report
    return {}


def _disk_use(roots: Sequence[Path]) -> tuple[int, int]:
    """Bytes (allocated) and entries under ``roots``, not following symlinks."""
    used = count = 0
    stack = [str(r) for r in roots]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                count += 1
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    used += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    return used, count


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


_MEMORY_MARKERS = (
    b"MemoryError",
    b"Cannot allocate memory",
    b"std::bad_alloc",
    b"Unable to allocate",
)
_FSIZE_MARKERS = (b"File too large",)
_NPROC_MARKERS = (b"Resource temporarily unavailable", b"can't start new thread")


def _limit_hit(
    sig: int | None,
    exit_code: int | None,
    cpu: float,
    lim: Limits,
    stderr_tail: bytes,
) -> LimitHit | None:
    """Which limit most likely ended the command. The kernel does not say; this reads the
    signal, the CPU time used and the end of stderr (where Python reports MemoryError,
    EFBIG or EAGAIN from fork). Evidence for the operator, not a security decision."""
    if sig in (signal.SIGXCPU, signal.SIGKILL) and cpu >= lim.cpu_seconds * 0.9:
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    if exit_code == 0:
        return None
    if any(m in stderr_tail for m in _MEMORY_MARKERS):
        return "memory"
    if any(m in stderr_tail for m in _FSIZE_MARKERS):
        return "file_size"
    if any(m in stderr_tail for m in _NPROC_MARKERS):
        return "processes"
    return None


class _Capture(threading.Thread):
    """Copies a pipe into a file up to ``cap`` bytes; counts and discards the rest so the
    command never blocks on a full pipe. Keeps the last few KiB in memory for diagnosis."""

    def __init__(self, pipe: IO[bytes], path: Path, cap: int) -> None:
        super().__init__(daemon=True)
        self.pipe, self.path, self.cap = pipe, path, cap
        self.total = 0
        self.truncated = False
        self.tail = b""

    def run(self) -> None:
        fd = self.pipe.fileno()
        with open(self.path, "wb") as out:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                room = self.cap - min(self.total, self.cap)
                if room:
                    out.write(chunk[:room])
                if len(chunk) > room:
                    self.truncated = True
                self.total += len(chunk)
                self.tail = (self.tail + chunk)[-8192:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.close()
