"""The first program inside the sandbox: runs the job's command and reports its resource use.

bubblewrap's monitor exits without reaping the PID namespace's init, so the runner's ``wait4``
never sees the job's CPU time. This launcher is the job's parent inside the sandbox: it waits
for the command with ``wait4`` and writes the usage as one JSON line to a file descriptor the
runner passed in, then exits with the command's status (128 + N when killed by signal N, which
also works when the launcher is the namespace's PID 1 and cannot kill itself).

Run as ``python -I -m carelight.sde.jobs.launch FD -- ARGV...``. Standard library only, so
it starts in a few milliseconds.
"""

from __future__ import annotations

import json
import os
import sys


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: launch FD -- ARGV...", file=sys.stderr)
        return 2
    report_fd = int(args[0])
    os.set_inheritable(report_fd, False)  # the job never gets the report pipe
    argv = args[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        os._exit(127)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    report = {
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        "max_rss_bytes": usage.ru_maxrss * 1024,
    }
    try:
        os.write(report_fd, json.dumps(report).encode() + b"\n")
        os.close(report_fd)
    except OSError:
        pass
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
