"""Carelight data-layer benchmarks: bulk load, then latency and throughput over real HTTP.

    make bench                          # 1,000,000 resources (builds once, then reuses the store)
    BENCH_ARGS=--quick make bench       # 20,000 resources: a smoke run in about a minute
    .venv/bin/python bench/run.py --help

Steps: build (or reuse) a store holding the synthetic data set from ``bench/generate.py``; start
``carelight serve`` as a subprocess on a free port; warm up; time sequential requests over one
keep-alive connection (read, NHS-number search, ``$everything``); then measure sustained reads/s
with many connections (``wrk`` when available, else a multi-process Python client). Prints a
table, writes ``bench/.data/last-results.json`` and, with ``--record``, appends a dated section to
``docs/benchmarks.md``. See docs/benchmarks.md for the targets and what the numbers mean.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bench.generate import (
    DEFAULT_RESOURCES,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    NHS_NUMBER_SYSTEM,
    Plan,
    generate,
    make_directory,
    make_plan,
    sample_patients,
)
from carelight.access.gate import DIRECTORY_TYPES

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
RESULTS_DOC = ROOT / "docs" / "benchmarks.md"
QUICK_RESOURCES = 20_000
FHIR_JSON = "application/fhir+json"

# Targets from the issue; all over HTTP against a store of at least 1,000,000 resources.
READ_P50_MS = 5.0
SEARCH_P50_MS = 10.0
EVERYTHING_P50_MS = 50.0
READS_PER_SECOND = 1500.0
TARGET_MIN_RESOURCES = 1_000_000

# Published figures to compare with (vendor-run, 8 dedicated CPUs, different hardware and mix).
HAPI_PER_CORE = 3750 / 8
MEDPLUM_PER_CORE = 1350 / 8

# Piped output (make, nohup) gets a table wide enough to read, not 80 columns.
console = Console(width=None if sys.stdout.isatty() else 110)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Latency:
    name: str
    what: str
    samples_ms: list[float]
    target_p50_ms: float
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)

    @property
    def passed(self) -> bool:
        return self.p50 <= self.target_p50_ms

    def summary(self) -> dict:
        return {
            "name": self.name,
            "what": self.what,
            "n": len(self.samples_ms),
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "p99_ms": round(self.p99, 3),
            "mean_ms": round(sum(self.samples_ms) / len(self.samples_ms), 3),
            "max_ms": round(max(self.samples_ms), 3),
            "target_p50_ms": self.target_p50_ms,
            "passed": self.passed,
            "note": self.note,
        }


@dataclass
class Throughput:
    client: str  # e.g. "wrk 4.1.0, 1 thread, 16 connections"
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def passed(self) -> bool:
        return self.rate >= READS_PER_SECOND and self.errors == 0

    def summary(self, cores: int) -> dict:
        per_core = self.rate / cores
        return {
            "client": self.client,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "errors": self.errors,
            "reads_per_second": round(self.rate, 1),
            "per_core": round(per_core, 1),
            "vs_hapi_per_core": round(per_core / HAPI_PER_CORE, 2),
            "vs_medplum_per_core": round(per_core / MEDPLUM_PER_CORE, 2),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "target_per_second": READS_PER_SECOND,
            "passed": self.passed,
        }


@dataclass
class StoreInfo:
    database_url: str  # password removed
    engine: str
    resources: int
    patients: int
    seed: int
    generator_version: int
    built_at: str
    load_seconds: float
    loaded: int
    reused: bool = False
    built_commit: str = ""  # the code that built it: rebuild after changes to indexing

    @property
    def load_rate(self) -> float:
        return self.resources / self.load_seconds if self.load_seconds else 0.0


# --------------------------------------------------------------------------------------------
# The store: build once, reuse while the marker matches
# --------------------------------------------------------------------------------------------


def default_database_url(resources: int) -> str:
    return f"sqlite:///{DATA_DIR / f'carelight-{resources}.db'}"


def redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def marker_path(url: str) -> Path:
    path = sqlite_path(url)
    if path is not None and path.parent == DATA_DIR:
        return path.with_suffix(".json")
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return DATA_DIR / f"store-{digest}.json"


def engine_name(url: str) -> str:
    if url.startswith("sqlite"):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    if url.startswith("postgresql"):
        with contextlib.suppress(Exception):
            import sqlalchemy

            engine = sqlalchemy.create_engine(url)
            with engine.connect() as conn:
                version = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
            engine.dispose()
            return f"PostgreSQL {version}"
        return "PostgreSQL"
    return url.split(":", 1)[0]


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:>7,.0f} resources/s", style="progress.data.speed")


@contextlib.contextmanager
def load_progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress callback: a Rich bar on a terminal, a line every 5% otherwise (nohup, CI)."""
    if console.is_terminal:
        with Progress(
            TextColumn("[bold]Loading[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
        ) as progress:
            task = progress.add_task("load", total=total)
            yield lambda n: progress.advance(task, n)
        return
    started = time.perf_counter()
    done = 0
    step = next_report = max(1, total // 20)

    def advance(n: int) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report or done >= total:
            elapsed = time.perf_counter() - started
            console.print(
                f"Loading: {done:>11,} / {total:,}  {done / elapsed:,.0f} resources/s  "
                f"{elapsed:,.0f} s",
                highlight=False,
            )
            next_report = done + step

    yield advance


def load_store(url: str, plan: Plan) -> StoreInfo:
    """Load the generated data set into the store at ``url`` and return what happened."""
    from carelight.fhir.store import open_store

    store = open_store(url)
    with load_progress(plan.resources) as advance:
        started = time.perf_counter()
        report = store.bulk_load(generate(plan.resources, plan.seed), progress=advance)
        seconds = time.perf_counter() - started
    errors = report.errors
    if errors:
        for label, message in errors[:10]:
            console.print(f"[red]resource {label}[/red]: {message}")
        raise SystemExit(f"{len(errors)} generated resources were rejected by bulk_load")
    with contextlib.suppress(Exception):
        store.engine.dispose()
    return StoreInfo(
        database_url=redact(url),
        engine=engine_name(url),
        resources=plan.resources,
        patients=plan.patients,
        seed=plan.seed,
        generator_version=GENERATOR_VERSION,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        load_seconds=round(seconds, 2),
        loaded=report.loaded + report.unchanged,
        built_commit=machine_info()["commit"],
    )


def prepare_store(url: str, plan: Plan, rebuild: bool) -> StoreInfo:
    """Reuse the store at ``url`` if its marker matches the plan; otherwise (re)build it."""
    marker = marker_path(url)
    db_file = sqlite_path(url)
    if not rebuild and marker.exists() and (db_file is None or db_file.exists()):
        info = StoreInfo(**json.loads(marker.read_text()))
        if (info.generator_version, info.resources, info.seed) == (
            GENERATOR_VERSION,
            plan.resources,
            plan.seed,
        ):
            info.reused = True
            console.print(
                f"Reusing the store built {info.built_at} ({info.resources:,} resources, "
                f"generator v{info.generator_version}, code {info.built_commit or 'unknown'}): "
                f"{info.database_url}\n[dim]Use --rebuild after changes to validation, "
                "extraction or indexing.[/dim]"
            )
            return info
    marker.unlink(missing_ok=True)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        if db_file.parent == DATA_DIR:  # ours to replace; a user's own file is loaded into
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    console.print(
        f"Building a store of {plan.resources:,} resources ({plan.patients:,} patients) "
        f"at {redact(url)}"
    )
    info = load_store(url, plan)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


# --------------------------------------------------------------------------------------------
# The workload: paths to request, chosen from patients regenerated on their own
# --------------------------------------------------------------------------------------------


@dataclass
class Workload:
    reads: list[tuple[str, str, str]]  # (path, type, id)
    searches: list[tuple[str, str]]  # (path, expected patient id)
    everything: list[tuple[str, int, frozenset[str]]]  # (path, compartment size, ids in it)
    compartment_sizes: list[int] = field(default_factory=list)


def make_workload(plan: Plan, patients: int, reads: int, seed: int) -> Workload:
    """Patients registered at the first practice, read by its GP (the gate decides)."""
    rng = random.Random(seed)
    samples = sample_patients(plan, patients, rng, practice=0)
    directory = make_directory(plan)
    pool = [pair for s in samples for pair in s.resources]
    pool += [
        (r["resourceType"], r["id"])
        for r in directory.resources()
        if r["resourceType"] in DIRECTORY_TYPES
    ]
    chosen = rng.sample(pool, min(reads, len(pool)))
    return Workload(
        reads=[(f"/fhir/{kind}/{rid}", kind, rid) for kind, rid in chosen],
        searches=[
            (
                f"/fhir/Patient?identifier={quote(f'{NHS_NUMBER_SYSTEM}|{s.nhs_number}', safe=':/')}",
                s.id,
            )
            for s in samples
        ],
        everything=[
            (
                f"/fhir/Patient/{s.id}/$everything?_count=1000",
                s.size,
                frozenset(rid for _, rid in s.resources),
            )
            for s in samples
        ],
        compartment_sizes=[s.size for s in samples],
    )


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


# The reads go through the gate as the first practice's GP: the bearer token, once the
# server's port (the token's audience) is known.
BEARER: list[str] = []


def gp_token(plan: Plan, port: int) -> str:
    from carelight.access.principal import Principal, Role
    from carelight.access.tokens import TokenService
    from carelight.config import Settings

    practice = make_directory(plan).practices[0]
    settings = Settings(
        home=DATA_DIR / "home",
        database_url="unused",
        base_url=f"http://127.0.0.1:{port}/fhir",
    )
    gp = Principal(
        username="bench-gp",
        role=Role.GP,
        organization_id=practice["id"],
        organization_code=practice["identifier"][0]["value"],
        scopes=frozenset({"user/*.read"}),
    )
    return TokenService.from_settings(settings).issue(gp)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def carelight_command() -> list[str]:
    script = Path(sys.executable).parent / "carelight"
    return [str(script)] if script.exists() else [sys.executable, "-m", "carelight.cli"]


@contextlib.contextmanager
def running_server(
    url: str, workers: int, log_path: Path, app_factory: str | None = None
) -> Iterator[tuple[str, int]]:
    """``carelight serve`` (or uvicorn on ``app_factory``, ``module:function``) in its own
    process group on a free port; stopped on exit."""
    port = free_port()
    home = DATA_DIR / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CARELIGHT_DATABASE_URL": url,
        "CARELIGHT_HOME": str(home),
        "CARELIGHT_BASE_URL": f"http://127.0.0.1:{port}/fhir",
    }
    command = [
        *carelight_command(),
        *("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]
    if app_factory is not None:
        command = [
            sys.executable,
            *("-m", "uvicorn", app_factory, "--factory", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(workers)),
            *("--log-level", "warning", "--no-access-log"),
        ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    try:
        wait_until_ready(proc, port, log_path)
        yield "127.0.0.1", port
    finally:
        stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_until_ready(
    proc: subprocess.Popen, port: int, log_path: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"carelight serve exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/fhir/metadata", headers={"Accept": FHIR_JSON})
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200 and b"CapabilityStatement" in body:
                return
        time.sleep(0.2)
    raise SystemExit(f"carelight serve did not answer /fhir/metadata within {timeout:.0f} s")


# --------------------------------------------------------------------------------------------
# Sequential latency over one keep-alive connection
# --------------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects if the server closes it."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.headers = {"Accept": FHIR_JSON}
        if token or BEARER:
            self.headers["Authorization"] = f"Bearer {token or BEARER[0]}"

    def get(self, path: str) -> tuple[int, bytes, float]:
        """(status, body, milliseconds from sending the request to reading the whole body)."""
        for attempt in (1, 2):
            try:
                started = time.perf_counter_ns()
                self.conn.request("GET", path, headers=self.headers)
                response = self.conn.getresponse()
                body = response.read()
                elapsed = (time.perf_counter_ns() - started) / 1e6
                if response.will_close:
                    self.conn.close()
                return response.status, body, elapsed
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


# A slow endpoint must not hold the run up for long: each kind stops after this many seconds,
# once it has at least MIN_SAMPLES samples (the table shows how many were taken).
PHASE_BUDGET_S = 90.0
MIN_SAMPLES = 20


def timed(
    client: Client, paths: Sequence[str], check: Callable[[int, str, int, bytes], None]
) -> list[float]:
    """Request each path in turn; ``check(i, path, status, body)`` runs outside the timing."""
    samples = []
    deadline = time.monotonic() + PHASE_BUDGET_S
    gc.disable()
    try:
        for i, path in enumerate(paths):
            status, body, ms = client.get(path)
            check(i, path, status, body)
            samples.append(ms)
            if len(samples) >= MIN_SAMPLES and time.monotonic() > deadline:
                console.print(
                    f"[yellow]Stopped after {len(samples)} of {len(paths)} requests: the "
                    f"{PHASE_BUDGET_S:.0f} s budget for this measure ran out.[/yellow]"
                )
                break
    finally:
        gc.enable()
    return samples


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def measure_latencies(
    host: str, port: int, work: Workload, reads: int, searches: int, everythings: int
) -> tuple[list[Latency], dict]:
    client = Client(host, port)
    rng = random.Random(1)
    details: dict = {}
    try:
        # Warm-up: every kind of request, so imports, caches and connection pools are primed.
        for path, *_ in work.reads[:300]:
            client.get(path)
        for path, _ in work.searches[:30]:
            client.get(path)
        for path, *_ in work.everything[:5]:
            client.get(path)

        read_paths = [rng.choice(work.reads) for _ in range(reads)]

        def check_read(i: int, path: str, status: int, body: bytes) -> None:
            expect(status == 200, f"GET {path} -> {status}: {body[:300]!r}")
            resource = orjson.loads(body)
            _, kind, rid = read_paths[i]
            expect(
                (resource.get("resourceType"), resource.get("id")) == (kind, rid),
                f"GET {path} returned {resource.get('resourceType')}/{resource.get('id')}",
            )

        read = timed(client, [p for p, _, _ in read_paths], check_read)

        search_items = [rng.choice(work.searches) for _ in range(searches)]

        def check_search(i: int, path: str, status: int, body: bytes) -> None:
            expect(status == 200, f"GET {path} -> {status}: {body[:300]!r}")
            bundle = orjson.loads(body)
            ids = [e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e]
            expect(ids == [search_items[i][1]], f"GET {path} matched {ids}")

        search = timed(client, [p for p, _ in search_items], check_search)

        everything_items = [work.everything[i % len(work.everything)] for i in range(everythings)]
        entry_counts: list[int] = []

        def check_everything(i: int, path: str, status: int, body: bytes) -> None:
            expect(status == 200, f"GET {path} -> {status}: {body[:300]!r}")
            bundle = orjson.loads(body)
            entries = bundle.get("entry", [])
            ids = {e["resource"]["id"] for e in entries}
            _, size, compartment = everything_items[i]
            missing = compartment - ids
            expect(not missing, f"{path}: {len(missing)} of {size} compartment resources missing")
            expect(
                not any(link.get("relation") == "next" for link in bundle.get("link", [])),
                f"{path}: paged at {len(entries)} entries",
            )
            entry_counts.append(len(entries))

        everything = timed(client, [p for p, _, _ in everything_items], check_everything)
    finally:
        client.close()

    details["everything_entries_mean"] = sum(entry_counts) / len(entry_counts)
    details["everything_entries_min"] = min(entry_counts)
    details["everything_entries_max"] = max(entry_counts)
    results = [
        Latency("read", "GET /fhir/{type}/{id}, random existing resources", read, READ_P50_MS),
        Latency(
            "search",
            "GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
            search,
            SEARCH_P50_MS,
        ),
        Latency(
            "everything",
            "GET /fhir/Patient/{id}/$everything?_count=1000",
            everything,
            EVERYTHING_P50_MS,
            note=(
                f"{details['everything_entries_min']}-{details['everything_entries_max']} entries "
                f"per Bundle, mean {details['everything_entries_mean']:.0f}"
            ),
        ),
    ]
    return results, details


# --------------------------------------------------------------------------------------------
# Throughput: sustained reads/s with many connections
# --------------------------------------------------------------------------------------------

WRK_SCRIPT = """
local paths = {}
for line in io.lines(%(paths)s) do paths[#paths + 1] = line end
wrk.headers["Accept"] = "application/fhir+json"
wrk.headers["Authorization"] = %(authorization)s
local threads = 0
local counter = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  counter = ((thread_index or 0) * 7919) %% #paths
end

function request()
  counter = counter %% #paths + 1
  return wrk.format("GET", paths[counter])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk(install: bool) -> str | None:
    path = shutil.which("wrk")
    if path or not install:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    console.print("wrk is missing: installing the Debian package (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            console.print(f"[yellow]{' '.join(command)} failed[/yellow]: {result.stderr[-500:]}")
            return None
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def throughput_wrk(
    wrk: str,
    host: str,
    port: int,
    paths: Sequence[str],
    seconds: int,
    connections: int,
    threads: int,
) -> Throughput:
    with tempfile.TemporaryDirectory(prefix="carelight-bench-") as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "reads.lua"
        authorization = json.dumps(f"Bearer {BEARER[0]}" if BEARER else "")
        script.write_text(
            WRK_SCRIPT % {"paths": json.dumps(str(paths_file)), "authorization": authorization}
        )
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://{host}:{port}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Throughput(
        client=f"{wrk_version(wrk)}, {threads} thread{'s' if threads > 1 else ''}, "
        f"{connections} connections",
        seconds=data["duration_us"] / 1e6,
        requests=data["requests"],
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def _python_load_worker(
    args: tuple[str, int, list[str], float, int, str | None],
) -> tuple[int, int, list[float]]:
    host, port, paths, seconds, offset, token = args
    client = Client(host, port, token)
    count = errors = 0
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    i = offset
    try:
        while time.perf_counter() < deadline:
            status, _, ms = client.get(paths[i % len(paths)])
            i += 1
            count += 1
            if status != 200:
                errors += 1
            if count % 10 == 0:
                samples.append(ms)
    finally:
        client.close()
    return count, errors, samples


def throughput_python(
    host: str, port: int, paths: Sequence[str], seconds: int, processes: int
) -> Throughput:
    token = BEARER[0] if BEARER else None
    jobs = [(host, port, list(paths), float(seconds), k * 7919, token) for k in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(processes) as pool:
        results = pool.map(_python_load_worker, jobs)
    elapsed = time.perf_counter() - started
    samples = [ms for _, _, s in results for ms in s]
    return Throughput(
        client=f"Python http.client, {processes} processes (one keep-alive connection each)",
        # Pool start-up is outside each worker's timed loop; use the requested duration.
        seconds=min(elapsed, float(seconds)),
        requests=sum(c for c, _, _ in results),
        errors=sum(e for _, e, _ in results),
        p50_ms=percentile(samples, 50),
        p99_ms=percentile(samples, 99),
    )


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if commit and dirty:
        commit += " with uncommitted changes in src/"
    return {
        "nproc": os.cpu_count() or 1,
        "cpu": cpu,
        "ram_gib": ram_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit or "unknown",
    }


def verdict(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[red]FAIL[/red]"


def print_results(results: dict) -> None:
    store, machine, tp = results["store"], results["machine"], results["throughput"]
    table = Table(
        title=(
            f"Carelight data layer: {store['resources']:,} resources, {store['engine']}, "
            f"{machine['nproc']} x {machine['cpu']}"
        ),
        title_justify="left",
    )
    table.add_column("measure")
    for column in ("p50", "p95", "p99", "n"):
        table.add_column(column, justify="right")
    table.add_column("target")
    table.add_column("result", justify="right")
    names = {"read": "read", "search": "NHS-number search", "everything": "$everything"}
    for lat in results["latency"]:
        table.add_row(
            names.get(lat["name"], lat["name"]),
            f"{lat['p50_ms']:.2f} ms",
            f"{lat['p95_ms']:.2f} ms",
            f"{lat['p99_ms']:.2f} ms",
            f"{lat['n']:,}",
            f"p50 <= {lat['target_p50_ms']:g} ms",
            verdict(lat["passed"]),
        )
    table.add_row(
        "reads/s",
        f"{tp['p50_ms']:.2f} ms",
        "",
        f"{tp['p99_ms']:.2f} ms",
        f"{tp['requests']:,}",
        f">= {READS_PER_SECOND:,.0f}/s",
        f"{tp['reads_per_second']:,.0f}/s {verdict(tp['passed'])}",
    )
    table.add_row(
        "reads/s per core",
        "",
        "",
        "",
        "",
        f"> {HAPI_PER_CORE:.0f}/core",
        f"{tp['per_core']:,.0f}/core {verdict(tp['per_core'] > HAPI_PER_CORE)}",
    )
    table.add_row(
        "bulk load", "", "", "", f"{store['resources']:,}", "", f"{store['load_rate']:,.0f}/s"
    )
    console.print(table)
    everything = next(lat for lat in results["latency"] if lat["name"] == "everything")
    notes = [
        "read: GET /fhir/{type}/{id} of random existing resources; search: GET "
        "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}; one keep-alive "
        "connection, sequential requests",
        f"$everything: {everything['note']}",
        f"reads/s: {tp['client']}, {tp['seconds']:.0f} s, {tp['errors']} errors; per core = "
        f"reads/s / {machine['nproc']} cores (server and load generator share them): "
        f"{tp['vs_hapi_per_core']:.1f}x HAPI FHIR (469/core), {tp['vs_medplum_per_core']:.1f}x "
        "Medplum (169/core); their figures are vendor-run on 8 CPUs",
        f"bulk load: store.bulk_load of the generated set, {store['load_seconds']:,.0f} s"
        + (f" (built {store['built_at']}, reused)" if store["reused"] else ""),
    ]
    for note in notes:
        console.print(f"[dim]- {note}[/dim]", highlight=False)
    if store["resources"] < TARGET_MIN_RESOURCES:
        console.print(
            f"[yellow]The targets are for a store of at least {TARGET_MIN_RESOURCES:,} resources; "
            f"this one has {store['resources']:,}.[/yellow]"
        )


def record_markdown(results: dict) -> str:
    store, machine, tp = results["store"], results["machine"], results["throughput"]
    when = results["finished_at"].replace("T", " ").replace("+00:00", " UTC")
    missed = [lat["name"] for lat in results["latency"] if not lat["passed"]]
    if not tp["passed"]:
        missed.append("reads/s")
    if store["resources"] < TARGET_MIN_RESOURCES:
        ok = f"not comparable (the targets need at least {TARGET_MIN_RESOURCES:,} resources)"
    else:
        labels = {"read": "read", "search": "NHS-number search", "everything": "$everything"}
        ok = "all met" if not missed else "missed: " + ", ".join(labels.get(m, m) for m in missed)

    def result(passed: bool) -> str:
        if store["resources"] < TARGET_MIN_RESOURCES:
            return "pass" if passed else "fail"
        return "**pass**" if passed else "**FAIL**"

    lines = [
        "",
        f"### {when} · {store['resources']:,} resources · {store['engine']}",
        "",
        f"- Machine: {machine['nproc']} x {machine['cpu']}, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}, Python {machine['python']}; commit {machine['commit']}.",
        f"- Server: `carelight serve --workers {results['server_workers']}`; load generator on the "
        f"same machine: {tp['client']}.",
        f"- Store: {store['resources']:,} resources, {store['patients']:,} patients, generator "
        f"v{store['generator_version']}, seed {store['seed']}"
        + (" (reused from an earlier build)." if store["reused"] else "."),
        f"- Against the targets: {ok}.",
        *([f"- Note: {results['note']}"] if results.get("note") else []),
        "",
        "| measure | p50 | p95 | p99 | n | target | result |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for lat in results["latency"]:
        label = {"read": "read", "search": "NHS-number search", "everything": "`$everything`"}
        name = label.get(lat["name"], lat["name"])
        if lat["note"]:
            name += f", {lat['note']}"
        lines.append(
            f"| {name} | {lat['p50_ms']:.2f} ms | {lat['p95_ms']:.2f} ms | {lat['p99_ms']:.2f} ms "
            f"| {lat['n']:,} | p50 ≤ {lat['target_p50_ms']:g} ms | {result(lat['passed'])} |"
        )
    lines += [
        f"| reads/s ({tp['seconds']:.0f} s, {tp['errors']} errors) | {tp['p50_ms']:.2f} ms | "
        f"| {tp['p99_ms']:.2f} ms | {tp['requests']:,} | ≥ {READS_PER_SECOND:,.0f}/s | "
        f"{tp['reads_per_second']:,.0f}/s, {result(tp['passed'])} |",
        f"| reads/s per core | | | | | > {HAPI_PER_CORE:.0f} (HAPI), > {MEDPLUM_PER_CORE:.0f} "
        f"(Medplum) | {tp['per_core']:,.0f}/core: {tp['vs_hapi_per_core']:.1f}x HAPI, "
        f"{tp['vs_medplum_per_core']:.1f}x Medplum |",
        f"| bulk load | | | | {store['resources']:,} | | {store['load_rate']:,.0f} resources/s "
        f"({store['load_seconds']:,.0f} s) |",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark the Carelight data layer over HTTP (see docs/benchmarks.md).",
    )
    parser.add_argument(
        "--resources", type=int, default=None, help=f"store size (default {DEFAULT_RESOURCES:,})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_RESOURCES:,} resources, fewer samples, 10 s of throughput",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the store (default: a SQLite file in bench/.data/)",
    )
    parser.add_argument(
        "--duration", type=int, default=None, help="seconds of throughput (default 30; quick 10)"
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--connections", type=int, default=16, help="concurrent connections for throughput (16)"
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="throughput client: wrk (installed with apt-get if root), python, or auto",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the store even if a matching one exists"
    )
    parser.add_argument(
        "--record", action="store_true", help="append the results to docs/benchmarks.md"
    )
    parser.add_argument("--note", default="", help="a remark to add to the recorded section")
    args = parser.parse_args(argv)
    if args.resources is None:
        args.resources = QUICK_RESOURCES if args.quick else DEFAULT_RESOURCES
    if args.duration is None:
        args.duration = 10 if args.quick else 30
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = args.database_url or default_database_url(args.resources)
    plan = make_plan(args.resources, args.seed)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    machine = machine_info()

    store = prepare_store(url, plan, args.rebuild)

    n_reads, n_searches, n_everything = (1000, 300, 40) if args.quick else (5000, 2000, 200)
    work = make_workload(plan, patients=min(500, plan.patients), reads=50_000, seed=args.seed + 1)
    console.print(
        f"Workload: {len(work.reads):,} distinct resources from {len(work.searches)} patients "
        f"(compartments of {min(work.compartment_sizes)}-{max(work.compartment_sizes)} resources)"
    )

    log_path = DATA_DIR / "server.log"
    with running_server(url, args.workers, log_path) as (host, port):
        BEARER[:] = [gp_token(plan, port)]
        console.print(
            f"Server up on {host}:{port} with {args.workers} worker(s); measuring latency "
            f"({n_reads:,} reads, {n_searches:,} searches, {n_everything} $everything)"
        )
        latencies, details = measure_latencies(host, port, work, n_reads, n_searches, n_everything)

        wrk = None if args.client == "python" else ensure_wrk(install=True)
        if args.client == "wrk" and wrk is None:
            raise SystemExit("wrk is not installed and could not be installed")
        read_paths = [p for p, _, _ in work.reads]
        console.print(f"Measuring throughput for {args.duration} s ...")
        if wrk:
            throughput = throughput_wrk(
                wrk, host, port, read_paths, args.duration, args.connections, threads=1
            )
        else:
            throughput = throughput_python(host, port, read_paths, args.duration, processes=4)

    results = {
        "finished_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": machine,
        "store": {**asdict(store), "load_rate": round(store.load_rate, 1)},
        "server_workers": args.workers,
        "note": args.note,
        "latency": [lat.summary() for lat in latencies],
        "everything": details,
        "throughput": throughput.summary(machine["nproc"]),
    }
    (DATA_DIR / "last-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print_results(results)
    if args.record:
        with RESULTS_DOC.open("a", encoding="utf-8") as doc:
            doc.write(record_markdown(results))
        console.print(f"Recorded in {RESULTS_DOC.relative_to(ROOT)}")
    passed = all(lat.passed for lat in latencies) and throughput.passed
    return 0 if passed or args.resources < TARGET_MIN_RESOURCES else 1


if __name__ == "__main__":
    sys.exit(main())
