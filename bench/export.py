"""Bulk Data export benchmark: resources/s of ``$export``, direct and over HTTP.

    .venv/bin/python bench/export.py                     # 100,000 resources (built once, reused)
    .venv/bin/python bench/export.py --resources 20000 --no-http
    .venv/bin/python bench/export.py --database-url sqlite:///bench/.data/carelight-1000000.db
    .venv/bin/python bench/export.py --postgres          # a throwaway PostgreSQL server, loaded

Steps: build (or reuse) ``bench/.data/export-<N>.db`` from ``bench.generate.generate(n)`` with
``store.bulk_load``; run a system-level and a Patient-level export straight through
``carelight.fhir.export.write_export`` (twice each: the first run reads a cold cache); then, unless
``--no-http``, start ``carelight serve`` as a subprocess, kick off ``GET /fhir/$export``,
poll until done, download every file and delete the job. Prints resources/s for each.

A store given with ``--database-url`` is only read (no migration, no job rows) by the direct
runs, and the HTTP run is skipped for it: ``carelight serve`` would migrate it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import DEFAULT_SEED, GENERATOR_VERSION, generate
from bench.run import carelight_command, free_port, stop_process_group, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
DEFAULT_RESOURCES = 100_000
TARGET_PER_SECOND = 30_000


@dataclass
class Run:
    name: str
    resources: int
    files: int
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        mb = self.bytes / 1e6
        return (
            f"{self.name:<34} {self.resources:>10,} resources {self.files:>3} files "
            f"{mb:>8,.1f} MB {self.seconds:>7.2f} s {self.rate:>10,.0f} resources/s "
            f"{mb / self.seconds if self.seconds else 0:>6,.0f} MB/s"
        )


# -- the store --------------------------------------------------------------------------------


def own_store(resources: int, rebuild: bool) -> str:
    """``bench/.data/export-<N>.db``: reused while its marker matches, else (re)built."""
    db = DATA_DIR / f"export-{resources}.db"
    marker = db.with_suffix(".json")
    url = f"sqlite:///{db}"
    if not rebuild and marker.exists() and db.exists():
        info = json.loads(marker.read_text())
        if (info["resources"], info["seed"], info["generator_version"]) == (
            resources,
            DEFAULT_SEED,
            GENERATOR_VERSION,
        ):
            print(f"Reusing {db.relative_to(ROOT)} (built {info['built_at']})")
            return url
    marker.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):  # only our own export-<N>.db, never carelight-<N>.db
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    seconds = load(url, resources)
    marker.write_text(
        json.dumps(
            {
                "resources": resources,
                "seed": DEFAULT_SEED,
                "generator_version": GENERATOR_VERSION,
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_seconds": round(seconds, 1),
            },
            indent=2,
        )
        + "\n"
    )
    return url


def load(url: str, resources: int) -> float:
    from carelight.fhir.store import open_store

    print(f"Loading {resources:,} generated resources ...", flush=True)
    store = open_store(url)
    started = time.perf_counter()
    report = store.bulk_load(generate(resources, DEFAULT_SEED))
    seconds = time.perf_counter() - started
    store.engine.dispose()
    if report.errors:
        raise SystemExit(f"{len(report.errors)} generated resources were rejected")
    print(f"  loaded in {seconds:,.1f} s ({resources / seconds:,.0f} resources/s)")
    return seconds


@contextlib.contextmanager
def postgres_store(resources: int) -> Iterator[str]:
    """A throwaway PostgreSQL server (the test suite's tests/pgcluster.py), loaded afresh."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PostgresCluster, find_server_binaries

    bindir = find_server_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (make test installs them)")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        url = cluster.create_database("export_bench")
        load(url, resources)
        yield url
    finally:
        cluster.stop()


def memory() -> str:
    """Heap (anonymous) and file-backed resident memory: SQLite maps the database file, so
    pages it reads count as resident without being the export's own memory."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    anon, file = (int(status[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile"))
    return f"resident now: {anon:,.0f} MiB heap, {file:,.0f} MiB file-backed (mmap)"


# -- direct: the export module ----------------------------------------------------------------


def direct(url: str, kind: str, repeat: int) -> list[Run]:
    from carelight.fhir.export.spec import parse_kickoff
    from carelight.fhir.export.writer import write_export
    from carelight.fhir.store import open_store

    store = open_store(url, run_migrations=False)
    runs = []
    try:
        for i in range(repeat):
            out = Path(tempfile.mkdtemp(prefix="export-", dir=DATA_DIR))
            try:
                started = time.perf_counter()
                result = write_export(store, parse_kickoff(kind, []), out)
                seconds = time.perf_counter() - started
                size = sum(f.stat().st_size for f in out.iterdir())
            finally:
                shutil.rmtree(out, ignore_errors=True)
            label = f"direct, {kind}-level, run {i + 1}"
            runs.append(Run(label, result.resources, len(result.outputs), size, seconds))
            print(runs[-1].line(), flush=True)
    finally:
        store.engine.dispose()
    return runs


# -- over HTTP: a real `carelight serve` ----------------------------------------------------


def over_http(url: str) -> Run:
    home = Path(tempfile.mkdtemp(prefix="export-home-", dir=DATA_DIR))
    port = free_port()
    env = {
        **os.environ,
        "CARELIGHT_DATABASE_URL": url,
        "CARELIGHT_HOME": str(home),
        "CARELIGHT_BASE_URL": f"http://127.0.0.1:{port}/fhir",
    }
    command = [*carelight_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ready(proc, port, log_path)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        started = time.perf_counter()
        status, headers, body = request(conn, "GET", "/fhir/$export", {"Prefer": "respond-async"})
        if status != 202:
            raise SystemExit(f"kick-off answered {status}: {body[:300]!r}")
        poll_path = urlsplit(headers["content-location"]).path
        while True:
            status, headers, body = request(conn, "GET", poll_path)
            if status != 202:
                break
            time.sleep(0.1)
        exported = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"status answered {status}: {body[:300]!r}")
        manifest = json.loads(body)
        size = 0
        for item in manifest["output"]:
            _, _, data = request(conn, "GET", urlsplit(item["url"]).path)
            size += len(data)
        total = time.perf_counter() - started
        request(conn, "DELETE", poll_path)
        count = sum(o["count"] for o in manifest["output"])
        run = Run(
            "HTTP, system-level (kick-off→200)", count, len(manifest["output"]), size, exported
        )
        print(run.line())
        dl = Run("HTTP, same, files downloaded too", count, len(manifest["output"]), size, total)
        print(dl.line(), flush=True)
        return run
    finally:
        stop_process_group(proc)
        shutil.rmtree(home, ignore_errors=True)


def request(conn, method: str, path: str, headers: dict | None = None):
    conn.request(method, path, headers={"Accept": "application/fhir+json", **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--resources", type=int, default=DEFAULT_RESOURCES)
    parser.add_argument("--database-url", help="export an existing store (read only)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild export-<N>.db")
    parser.add_argument("--repeat", type=int, default=2, help="direct runs of each kind")
    parser.add_argument("--no-http", action="store_true", help="skip the carelight serve run")
    parser.add_argument(
        "--postgres", action="store_true", help="load into a throwaway PostgreSQL server instead"
    )
    args = parser.parse_args(argv)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(postgres_store(args.resources))
        else:
            url = args.database_url or own_store(args.resources, args.rebuild)
        print(f"{os.cpu_count()} cores; store {url}\n")
        runs = direct(url, "system", args.repeat) + direct(url, "patient", args.repeat)
        print(memory())
        if not args.no_http and not args.database_url:
            runs.append(over_http(url))
    best = max(r.rate for r in runs if "system" in r.name)
    print(
        f"\nBest system-level export: {best:,.0f} resources/s "
        f"(target {TARGET_PER_SECOND:,}: {'met' if best >= TARGET_PER_SECOND else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
