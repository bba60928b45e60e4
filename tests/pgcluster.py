"""A throwaway PostgreSQL server for tests.

``PostgresCluster`` runs ``initdb`` into a fresh temporary directory, starts a
server on a free TCP port on 127.0.0.1 and, on ``stop()`` (or at interpreter
exit), stops it and deletes the directory. Nothing is installed or configured
system-wide; only the server binaries are needed (Debian: ``apt-get install
postgresql``; ``make test`` does that for you).

    cluster = PostgresCluster()
    cluster.start()
    url = cluster.create_database("store")  # postgresql+psycopg://postgres@127.0.0.1:PORT/store
    ...
    cluster.stop()

Details worth knowing:

* Binaries are found with ``pg_config --bindir``, then the newest
  ``/usr/lib/postgresql/*/bin``, then ``initdb`` on PATH. Debian's
  ``/usr/bin/pg_config`` comes from libpq-dev and names the server bindir even
  when the server is not installed, so every candidate is checked for
  ``initdb``, ``pg_ctl`` and ``postgres``.
* PostgreSQL refuses to run as root. As root the binaries run as the
  ``postgres`` system user (``nobody`` if there is none), via
  ``subprocess``'s ``user=``/``group=`` (the same set(e)uid switch as
  ``runuser``, without a PAM session), and the temp directory is owned by that
  user. This also means the temp directory must sit below directories that user
  can traverse: a ``TMPDIR`` under ``/root`` would not do, so we fall back to
  ``/tmp`` then.
* Authentication is ``trust`` for TCP connections from 127.0.0.1 only; there
  is no password. Any local user can reach the server while it runs: it is for
  throwaway test data only.
* Durability is switched off (``fsync``, ``synchronous_commit``,
  ``full_page_writes``) and ``initdb --no-sync`` is used: a crash loses the
  cluster, which we throw away anyway.
* Locale is ``C.UTF-8`` (falling back to ``C``), time zone UTC, so tests behave
  the same on every machine; unlike plain ``C``, ``C.UTF-8`` makes ``lower()``
  and ``upper()`` handle non-ASCII letters.
* Leftovers: the temp directory is named ``carelight-pg-<owner pid>-*``. A run
  killed with SIGKILL cannot clean up, so every ``start()`` first stops and
  deletes clusters whose owner process is gone.
* Where: /dev/shm (tmpfs) when it has at least 1 GiB free, else the usual temp
  directory; ``CARELIGHT_TEST_PG_TMPDIR`` overrides. See ``_temp_bases()``.

Timing (PostgreSQL 15.18, Debian 12, root, 2-vCPU VM; measured 2026-11):

    ================  ==================  ================
    step              /dev/shm (tmpfs)    /tmp (disk)
    ================  ==================  ================
    initdb            0.42 s              1.0-1.4 s
    server start      0.11 s              0.12 s
    start() total     0.54 s              1.1-1.55 s
    create_database   ~33 ms              ~280-340 ms
    stop()            0.12 s              0.14 s
    ================  ==================  ================

With ``pytest -n 2`` each worker starts its own cluster at the same time, so
the suite pays this once in wall-clock time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = ["ExternalPostgres", "PostgresCluster", "PostgresError", "find_server_binaries"]

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_DIR_PREFIX = "carelight-pg-"
# Database names we accept: plain identifiers, so they need no quoting in a URL.
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# The kernel limit for a unix socket path is 107 bytes; longer and the server
# would refuse to start, so we disable the socket rather than fail.
_MAX_SOCKET_DIR = 80
# A cluster with a few test databases is 50-200 MB; only use tmpfs with room to spare.
_MIN_SHM_FREE = 1 << 30

# Settings appended to postgresql.conf. Each says why it is there.
_TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    # Durability buys nothing for a cluster deleted after the run.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'32MB'",
    # Test data is tiny; parallel query only adds start-up cost and needs
    # /dev/shm space, which containers often cap at 64 MB.
    "max_parallel_workers_per_gather": "0",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    # Keep the log useful when a start fails, not full of checkpoints.
    "log_min_messages": "warning",
    "log_checkpoints": "off",
}


class PostgresError(RuntimeError):
    """The cluster could not be created, started or used."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _SERVER_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); non-numeric names sort first.
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts)


def find_server_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        # e.g. a symlink in /usr/local/bin: the server binaries sit beside its target.
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if _has_server_binaries(bindir):
            return bindir
    return None


def _free_port() -> int:
    # Another process may grab the port before the server binds it; start()
    # retries with a new port when that happens.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _traversable_by_others(path: Path) -> bool:
    """Whether every directory from / down to ``path`` has o+x."""
    path = path.resolve()
    for p in (path, *path.parents):
        try:
            if not p.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _temp_bases() -> list[Path]:
    """Where clusters may live, best first.

    ``CARELIGHT_TEST_PG_TMPDIR`` wins if set. Otherwise a roomy /dev/shm
    (tmpfs) comes first: CREATE DATABASE there takes ~20 ms instead of ~200 ms
    on a disk, and suites that create a database per test feel that. Docker
    caps /dev/shm at 64 MB by default, hence the free-space check.
    """
    override = os.environ.get("CARELIGHT_TEST_PG_TMPDIR")
    if override:
        return [Path(override)]
    bases: list[Path] = []
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        st = os.statvfs(shm)
        if st.f_bavail * st.f_frsize >= _MIN_SHM_FREE:
            bases.append(shm)
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        if base not in bases:
            bases.append(base)
    return bases


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


def _conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (drops the ``+psycopg``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _check_name(name: str) -> None:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name must be a plain identifier (≤ 63 chars): {name!r}")


class _Server:
    """What a test needs from a PostgreSQL server, local or external."""

    base_url: str  # SQLAlchemy URL without a database
    maintenance_db = "postgres"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropped first if it exists); return its SQLAlchemy URL."""
        _check_name(name)
        ident = sql.Identifier(name)
        # CREATE/DROP DATABASE cannot run inside a transaction: autocommit.
        with psycopg.connect(_conninfo(self.url(self.maintenance_db)), autocommit=True) as conn:
            # FORCE (PostgreSQL 13+) ends sessions a previous test left open.
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            # template0: nobody can be connected to it, which would make
            # concurrent CREATE DATABASE from template1 fail.
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident)
            )
        return self.url(name)

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"


class PostgresCluster(_Server):
    """A private PostgreSQL cluster in a temp directory; see the module docstring."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir
        self.port: int | None = None
        self.root: Path | None = None  # temp dir: data/, server.log, socket
        self._user: pwd.struct_passwd | None = None  # who runs the binaries when we are root
        self._owner_pid = os.getpid()

    # -- public API --------------------------------------------------------

    @property
    def base_url(self) -> str:  # type: ignore[override]
        if self.port is None:
            raise PostgresError("cluster is not running; call start() first")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.port is not None

    def start(self) -> None:
        if self.running:
            return
        if self.bindir is None:
            self.bindir = find_server_binaries()
        if self.bindir is None:
            raise PostgresError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; "
                "install them (Debian: apt-get install postgresql) or run `make test`"
            )
        self._user = self._pick_user()
        for stale_base in _temp_bases():
            _sweep_stale(stale_base, self.bindir)
        base = self._temp_base()
        self.root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=base))
        # Registered before anything can fail, so a half-made cluster is removed too.
        atexit.register(self._atexit)
        try:
            if self._user is not None:
                os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            self._configure()
            self._start_server()
        except BaseException as exc:
            self.stop()
            if isinstance(exc, OSError | subprocess.SubprocessError):
                # One exception type for callers (the fixture) to report.
                raise PostgresError(f"could not start PostgreSQL: {exc}") from exc
            raise

    def stop(self) -> None:
        """Stop the server and delete its directory. Safe to call more than once."""
        root, self.root = self.root, None
        self.port = None
        atexit.unregister(self._atexit)
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            # immediate: no shutdown checkpoint, nothing here is worth keeping.
            self._run(
                [self._bin("pg_ctl"), "stop", "-D", str(root / "data"), "-m", "immediate", "-w"]
            )
        shutil.rmtree(root, ignore_errors=True)

    # -- steps ---------------------------------------------------------------

    def _initdb(self) -> None:
        assert self.root is not None
        data = self.root / "data"
        last: subprocess.CompletedProcess[str] | None = None
        # C.UTF-8 is missing on some systems (older glibc, macOS): fall back to C.
        for loc in ("C.UTF-8", "C"):
            last = self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    f"--locale={loc}",
                    "--no-sync",
                ]
            )
            if last.returncode == 0:
                return
            shutil.rmtree(data, ignore_errors=True)
        assert last is not None
        raise PostgresError(f"initdb failed:\n{last.stdout}{last.stderr}")

    def _configure(self) -> None:
        assert self.root is not None
        data = self.root / "data"
        settings = dict(_TEST_SETTINGS)
        sockets = str(self.root) if len(str(self.root)) <= _MAX_SOCKET_DIR else ""
        settings["unix_socket_directories"] = "'" + sockets.replace("'", "''") + "'"
        # Appending (and truncating pg_hba.conf) keeps the files owned by the
        # server user even though we may be root here.
        with (data / "postgresql.conf").open("a") as f:
            f.write("\n# carelight test cluster\n")
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
        (data / "pg_hba.conf").write_text(
            "# carelight test cluster: trust, TCP from 127.0.0.1 only\n"
            "host all all 127.0.0.1/32 trust\n"
        )

    def _start_server(self) -> None:
        assert self.root is not None
        log = self.root / "server.log"
        for _attempt in range(5):
            port = _free_port()
            # The port goes on the command line so a retry need not edit the config.
            result = self._run(
                [
                    self._bin("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.root / "data"),
                    "-l",
                    str(log),
                    "-o",
                    f"-p {port}",
                ],
                timeout=120,
            )
            if result.returncode == 0:
                self.port = port
                return
            text = log.read_text(errors="replace") if log.exists() else ""
            if "could not bind" not in text and "already in use" not in text:
                break
            # Lost the race for the port to another process: try another one.
            log.unlink(missing_ok=True)
        text = log.read_text(errors="replace") if log.exists() else ""
        raise PostgresError(
            f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n"
            f"--- {log} (last lines) ---\n" + "\n".join(text.splitlines()[-30:])
        )

    # -- helpers ---------------------------------------------------------------

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    @staticmethod
    def _pick_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None  # run as ourselves
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise PostgresError("running as root, but there is no 'postgres' or 'nobody' user")

    def _temp_base(self) -> Path:
        for base in _temp_bases():
            if self._user is not None and not _traversable_by_others(base):
                continue  # e.g. TMPDIR under /root: the server user could not reach it
            if os.access(base, os.W_OK):
                return base
        raise PostgresError(f"no usable temp directory among {_temp_bases()}")

    def _run(self, cmd: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run_as(self._user, cmd, cwd=self.root, timeout=timeout)

    def _atexit(self) -> None:
        # A forked child (multiprocessing) inherits atexit handlers: only the
        # process that started the cluster may stop it.
        if os.getpid() == self._owner_pid:
            self.stop()


def _run_as(
    user: pwd.struct_passwd | None,
    cmd: list[str],
    *,
    cwd: Path | None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a server binary as ``user`` (None: as ourselves); never raises on exit status."""
    # A small, fixed environment: PGDATA/PGPORT/LANG from the developer's shell
    # must not change what the cluster does.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    kwargs: dict[str, object] = {}
    if user is not None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env["HOME"] = user.pw_dir
        env["USER"] = env["LOGNAME"] = user.pw_name
    return subprocess.run(
        cmd,
        # cwd must be readable by the server user (initdb checks), and the
        # caller's cwd may not be.
        cwd=cwd if cwd is not None and cwd.exists() else "/",
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _sweep_stale(base: Path, bindir: Path) -> None:
    """Stop and delete clusters left behind by test runs that were killed."""
    for root in base.glob(f"{_DIR_PREFIX}*"):
        m = re.fullmatch(rf"{re.escape(_DIR_PREFIX)}(\d+)-.*", root.name)
        if not m or _pid_alive(int(m.group(1))) or not root.is_dir():
            continue
        try:
            owner = pwd.getpwuid(root.stat().st_uid)
        except (KeyError, OSError):
            continue
        if os.geteuid() not in (0, owner.pw_uid):
            continue  # someone else's; not ours to touch
        user = owner if os.geteuid() == 0 and owner.pw_uid != 0 else None
        if (root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _run_as(
                    user,
                    [str(bindir / "pg_ctl"), "stop", "-D", str(root / "data"), "-m", "immediate"],
                    cwd=root,
                    timeout=30,
                )
        shutil.rmtree(root, ignore_errors=True)


class ExternalPostgres(_Server):
    """An existing server named by a URL (``CARELIGHT_TEST_POSTGRES_URL``).

    Databases are created with ``name_prefix`` in front of the requested name,
    so tests never drop a database they did not create, and parallel workers
    sharing the server do not collide. ``stop()`` drops what was created.
    """

    def __init__(self, url: str, name_prefix: str = "carelight_test_") -> None:
        parsed = make_url(url)
        if not parsed.drivername.startswith("postgresql"):
            raise PostgresError(f"not a PostgreSQL URL: {parsed!r}")
        if parsed.database:
            self.maintenance_db = parsed.database
        # URL.set(database=None) would keep the database: None means "unchanged" there.
        without_db = URL.create(
            parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port
        )
        self.base_url = without_db.render_as_string(hide_password=False)
        self.name_prefix = name_prefix
        self._created: list[str] = []

    def start(self) -> None:
        """Check the server is reachable (no-op otherwise)."""
        try:
            with psycopg.connect(_conninfo(self.url(self.maintenance_db)), connect_timeout=10):
                pass
        except psycopg.Error as exc:
            raise PostgresError(f"cannot connect to {self.base_url}: {exc}") from exc

    def create_database(self, name: str) -> str:
        _check_name(name)  # the bare name too: "" or "1x" must not pass thanks to the prefix
        full = self.name_prefix + name
        url = super().create_database(full)
        self._created.append(full)
        return url

    def stop(self) -> None:
        created, self._created = self._created, []
        if not created:
            return
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(_conninfo(self.url(self.maintenance_db)), autocommit=True) as conn,
        ):
            for name in created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":  # python tests/pgcluster.py: time a start/stop cycle
    t0 = time.perf_counter()
    cluster = PostgresCluster()
    cluster.start()
    t1 = time.perf_counter()
    cluster.create_database("timing")
    t2 = time.perf_counter()
    cluster.stop()
    t3 = time.perf_counter()
    print(
        f"bindir={cluster.bindir} start={t1 - t0:.2f}s "
        f"create_database={(t2 - t1) * 1000:.0f}ms stop={t3 - t2:.2f}s"
    )
