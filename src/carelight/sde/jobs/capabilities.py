"""What isolation this machine can give a job, detected once per process.

The sandbox prefers bubblewrap (``bwrap``): it builds a new mount namespace with an empty root
and only the paths a job needs, plus new network, PID, IPC and UTS namespaces. Without it, the
util-linux ``unshare`` tool gives the same namespaces and a small mount script builds the same
view. Without either (or when namespaces are forbidden, as in some containers) the job still
runs, under resource limits and a clean environment only: the *fallback*, which every result
flags. See docs/sde-jobs.md.

Detection runs a real probe (a namespace that must come up, with no network) rather than only
looking for the binaries: a container can ship ``bwrap`` and still forbid namespaces.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Literal

Backend = Literal["bwrap", "unshare", "rlimits"]
Isolation = Literal["namespaces", "fallback"]

#: The unprivileged user a job runs as when the runner is root. Root (user id 0 on the host)
#: is exempt from the kernel's process-count limit and owns every file, so a job never keeps it.
SANDBOX_UID = 65534
SANDBOX_GID = 65534

_PROBE_TIMEOUT = 10

log = logging.getLogger("carelight")


@dataclass(frozen=True)
class Capabilities:
    """The isolation tools found and whether each one actually works here."""

    bwrap: str | None  # path of a working bubblewrap, else None
    unshare: str | None  # path of a working util-linux unshare (+ setpriv), else None
    running_as_root: bool
    notes: tuple[str, ...]  # why a tool was not usable, for the operator

    @property
    def backend(self) -> Backend:
        if self.bwrap:
            return "bwrap"
        if self.unshare:
            return "unshare"
        return "rlimits"

    @property
    def isolation(self) -> Isolation:
        return "fallback" if self.backend == "rlimits" else "namespaces"

    def to_dict(self) -> dict:
        return {**asdict(self), "backend": self.backend, "isolation": self.isolation}


def _probe(argv: list[str]) -> str | None:
    """None when ``argv`` ran and exited 0, else a short reason."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{argv[0]} exited {done.returncode}: {err[-1] if err else 'no message'}"
    return None


def _bwrap_probe(bwrap: str, as_root: bool) -> list[str]:
    argv = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not as_root:
        argv.append("--unshare-user")
    argv += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin"]
    argv += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--die-with-parent"]
    if as_root:
        setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
        if not setpriv:
            return [bwrap, "--version", "--no-setpriv"]  # fails: setpriv is needed as root
        argv += [setpriv, f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups"]
        argv += ["--"]
    return [*argv, "/usr/bin/true"]


def _unshare_probe(unshare: str, setpriv: str) -> list[str]:
    return [
        unshare,
        "--net",
        "--pid",
        "--fork",
        "--mount",
        "--ipc",
        "--uts",
        "--kill-child",
        setpriv,
        f"--reuid={SANDBOX_UID}",
        f"--regid={SANDBOX_GID}",
        "--clear-groups",
        "--",
        "/usr/bin/true",
    ]


@functools.cache
def detect_capabilities() -> Capabilities:
    """Probe bubblewrap and unshare once and remember the answer for this process."""
    as_root = os.geteuid() == 0
    notes: list[str] = []
    bwrap = shutil.which("bwrap")
    if bwrap:
        reason = _probe(_bwrap_probe(bwrap, as_root))
        if reason:
            notes.append(f"bubblewrap unusable: {reason}")
            bwrap = None
    else:
        notes.append("bubblewrap (bwrap) not installed")
    unshare = shutil.which("unshare")
    setpriv = shutil.which("setpriv")
    if not as_root:
        # Without root, unshare cannot build the mount view we need (it would need
        # a user namespace and its own mount helper); bwrap does that for us.
        notes.append("unshare backend needs root; not used")
        unshare = None
    elif unshare and setpriv:
        reason = _probe(_unshare_probe(unshare, setpriv))
        if reason:
            notes.append(f"unshare unusable: {reason}")
            unshare = None
    else:
        notes.append("util-linux unshare/setpriv not installed")
        unshare = None
    caps = Capabilities(bwrap=bwrap, unshare=unshare, running_as_root=as_root, notes=tuple(notes))
    if caps.isolation == "fallback":
        log.warning("job sandbox: no namespaces, jobs run in the flagged fallback: %s", notes)
    else:
        log.info("job sandbox: %s (%s)", caps.backend, caps.isolation)
    return caps
