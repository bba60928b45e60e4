"""Transparency log benchmarks: append rate and latency, proofs at 10M entries, verify at 1M.

    .venv/bin/python bench/audit.py             # full run (builds its logs once, then reuses them)
    .venv/bin/python bench/audit.py --quick     # small logs: a smoke run in about a minute
    .venv/bin/python bench/audit.py --postgres  # the append figures on PostgreSQL too

Steps, all on SQLite unless said:

1. **append**: into a fresh store, ``Trail.record`` one event at a time (latency per append,
   each its own committed transaction), from 8 threads at once (group commit: throughput), and
   ``Trail.record_many`` in batches of 1,000. Target: at least 20,000 entries/s.
2. **proofs**: a log of 10,000,000 synthetic leaves (``bench/.data/audit-proofs-<N>.db``, built
   once by bulk ``TransparencyLog.append_many``); inclusion and consistency proofs against its
   full size, each checked with a plain RFC 9162 verifier. Target: an inclusion proof in at
   most 1 ms.
3. **verify**: ``carelight audit verify`` as a subprocess over a log of 1,000,000 real
   AuditEvent entries (``bench/.data/audit-verify-<N>.db``, with a checkpoint every 100,000).
   Target: at most 30 s.

Prints a table and writes ``bench/.data/audit-results.json``. The key of both logs lives in
``bench/.data/audit-home/keys``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.run import machine_info, percentile
from carelight.access.principal import Principal, Role
from carelight.audit.events import AccessEvent
from carelight.audit.log import TransparencyLog
from carelight.audit.trail import Trail, open_trail
from carelight.config import Settings
from carelight.fhir.db import make_engine, migrate

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
HOME = DATA_DIR / "audit-home"
RESULTS = DATA_DIR / "audit-results.json"
ORIGIN = "bench.carelight.example/log"

APPEND_PER_SECOND = 20_000
INCLUSION_MS = 1.0
VERIFY_SECONDS = 30.0

console = Console()

GP = Principal(
    username="gp",
    role=Role.GP,
    display="Dr Ada Jones",
    organization_id="Y99101-org",
    organization_code="Y99101",
    organization_name="Riverside Surgery",
)


def event(n: int) -> AccessEvent:
    """A realistic access: a GP reads one of a patient's Observations for direct care."""
    return AccessEvent(
        action="read" if n % 5 else "search",
        outcome="success",
        username="gp",
        principal=GP,
        purpose="TREAT",
        patients=(f"pat-{n % 50_000}",),
        resources=(f"Observation/obs-{n}",),
        query="Observation?patient,code" if n % 5 == 0 else None,
        recorded=1_790_000_000.0 + n / 100,
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


# -- 1. appends ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_trail(url: str | None) -> Iterator[Trail]:
    """A Trail over a new, migrated database (a temporary SQLite file unless url is given)."""
    with tempfile.TemporaryDirectory(dir=DATA_DIR) as tmp:
        engine = make_engine(url or f"sqlite:///{tmp}/append.db")
        migrate(engine)
        trail = open_trail(engine, Settings(HOME, "unused", "http://x/fhir"), origin=ORIGIN)
        try:
            yield trail
        finally:
            trail.close()
            engine.dispose()


def bench_append(url: str | None, sequential: int, threaded: int, batched: int) -> dict:
    out: dict = {}
    with fresh_trail(url) as trail:
        events = [event(n) for n in range(max(sequential, threaded, batched))]
        for e in events[:200]:  # warm up: caches, the first checkpoint
            trail.record(e)

        samples = []
        start = time.perf_counter()
        for e in events[:sequential]:
            t = time.perf_counter()
            trail.record(e)
            samples.append((time.perf_counter() - t) * 1e6)
        elapsed = time.perf_counter() - start
        out["sequential"] = {
            "entries": sequential,
            "per_second": sequential / elapsed,
            "p50_us": percentile(samples, 50),
            "mean_us": statistics.fmean(samples),
            "p99_us": percentile(samples, 99),
        }
        signing = []
        for e in events[:20]:  # sign a checkpoint over a grown tree (Ed25519 twice, a sync)
            trail.record(e)
            t = time.perf_counter()
            trail.log.latest_checkpoint(force=True)
            signing.append((time.perf_counter() - t) * 1000)
        out["checkpoint_ms"] = percentile(signing, 50)

        threads = 8
        per_thread = threaded // threads
        transactions = 0
        real = trail.log.append_many

        def counting(items):
            nonlocal transactions
            transactions += 1
            return real(items)

        trail.log.append_many = counting  # type: ignore[method-assign]
        barrier = threading.Barrier(threads + 1)

        def work(t: int) -> None:
            barrier.wait()
            for e in events[t * per_thread : (t + 1) * per_thread]:
                trail.record(e)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        barrier.wait()
        start = time.perf_counter()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        del trail.log.append_many
        out["threads"] = {
            "threads": threads,
            "entries": per_thread * threads,
            "per_second": per_thread * threads / elapsed,
            "entries_per_transaction": per_thread * threads / max(transactions, 1),
        }

        batch = 1000
        start = time.perf_counter()
        for at in range(0, batched, batch):
            trail.record_many(events[at : at + batch])
        elapsed = time.perf_counter() - start
        out["batched"] = {"entries": batched, "batch": batch, "per_second": batched / elapsed}
        out["size"] = trail.log.size()
    return out


# -- 2. proofs at scale ----------------------------------------------------------------------


def open_log(path: Path) -> TransparencyLog:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    from carelight.audit.checkpoint import load_signer

    return TransparencyLog(engine, load_signer(HOME, ORIGIN))


def synthetic_leaf(n: int) -> bytes:
    return b'{"bench":%d,"what":"a synthetic leaf for the proof benchmark"}' % n


def build_proof_log(size: int, rebuild: bool) -> tuple[TransparencyLog, float | None]:
    path = DATA_DIR / f"audit-proofs-{size}.db"
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    log = open_log(path)
    have = log.size()
    if have == size:
        return log, None
    if have > size:
        raise SystemExit(f"{path} holds {have:,} leaves, not {size:,}: run with --rebuild")
    batch = 100_000
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"building a {size:,}-leaf log", total=size, completed=have)
        for at in range(have, size, batch):
            end = min(at + batch, size)
            log.append_many([(synthetic_leaf(n), ()) for n in range(at, end)])
            bar.update(task, completed=end)
    return log, time.perf_counter() - start


def rfc_root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2's walk, returning the root it arrives at (checked by the caller)."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise AssertionError("the inclusion proof has the wrong length")
    return r


def bench_proofs(size: int, rebuild: bool, samples: int) -> dict:
    log, build_seconds = build_proof_log(size, rebuild)
    rng = random.Random(9162)
    try:
        for _ in range(200):  # warm the page cache a little, as a running server's would be
            log.inclusion_proof(rng.randrange(size), size)
        roots = []
        for _ in range(21):
            start = time.perf_counter()
            root = log.root_hash(size)
            roots.append((time.perf_counter() - start) * 1000)
        root_ms = percentile(roots, 50)
        inclusion = []
        for _ in range(samples):
            index = rng.randrange(size)
            t = time.perf_counter()
            proof = log.inclusion_proof(index, size)
            inclusion.append((time.perf_counter() - t) * 1000)
            leaf = sha256(b"\x00" + synthetic_leaf(index)).digest()
            if rfc_root_from_inclusion(index, size, leaf, proof) != root:
                raise AssertionError(f"the inclusion proof of {index} does not verify")
        consistency = []
        for _ in range(samples):
            old = rng.randrange(1, size)
            t = time.perf_counter()
            log.consistency_proof(old, size)
            consistency.append((time.perf_counter() - t) * 1000)
        db_bytes = (DATA_DIR / f"audit-proofs-{size}.db").stat().st_size
    finally:
        log.close()
        log.engine.dispose()
    return {
        "size": size,
        "build_seconds": build_seconds,
        "database_gib": db_bytes / 2**30,
        "root_ms": root_ms,
        "inclusion_p50_ms": percentile(inclusion, 50),
        "inclusion_p99_ms": percentile(inclusion, 99),
        "consistency_p50_ms": percentile(consistency, 50),
        "consistency_p99_ms": percentile(consistency, 99),
        "samples": samples,
    }


# -- 3. verify -------------------------------------------------------------------------------


def build_verify_log(size: int, rebuild: bool) -> tuple[Path, float | None]:
    path = DATA_DIR / f"audit-verify-{size}.db"
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    trail = open_trail(engine, Settings(HOME, "unused", "http://x/fhir"), origin=ORIGIN)
    trail.log.checkpoint_interval = float("inf")  # checkpoints where this build says
    try:
        have = trail.log.size()
        if have == size:
            return path, None
        if have != 0:
            raise SystemExit(f"{path} holds {have:,} entries, not {size:,}: run with --rebuild")
        batch, every = 10_000, 100_000
        start = time.perf_counter()
        with progress_bar() as bar:
            task = bar.add_task(f"building a {size:,}-entry log", total=size)
            for at in range(0, size, batch):
                trail.record_many([event(n) for n in range(at, min(at + batch, size))])
                if (at + batch) % every == 0 or at + batch >= size:
                    trail.log.latest_checkpoint(force=True)
                bar.update(task, completed=min(at + batch, size))
        return path, time.perf_counter() - start
    finally:
        trail.close()
        engine.dispose()


def bench_verify(size: int, rebuild: bool) -> dict:
    path, build_seconds = build_verify_log(size, rebuild)
    env = {
        **os.environ,
        "CARELIGHT_HOME": str(HOME),
        "CARELIGHT_DATABASE_URL": f"sqlite:///{path}",
        "CARELIGHT_LOG_ORIGIN": ORIGIN,
    }
    command = [sys.executable, "-m", "carelight.cli", "audit", "verify"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"carelight audit verify failed on the benchmark log:\n{done.stderr}")
    return {
        "size": size,
        "build_seconds": build_seconds,
        "seconds": seconds,
        "per_second": size / seconds,
        "database_gib": path.stat().st_size / 2**30,
        "summary": done.stderr.strip().splitlines()[-1],
    }


# -- reporting -------------------------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "[green]met[/green]" if passed else "[red]missed[/red]"


def report(results: dict) -> None:
    table = Table(title="Transparency log", show_lines=False)
    for column in ("measure", "figure", "target"):
        table.add_column(column)
    for engine, append in results["append"].items():
        seq, thr, bat = append["sequential"], append["threads"], append["batched"]
        table.add_row(
            f"{engine}: one record() at a time",
            f"{seq['per_second']:,.0f}/s; p50 {seq['p50_us']:.0f} µs, mean "
            f"{seq['mean_us']:.0f} µs, p99 {seq['p99_us']:.0f} µs",
            "",
        )
        table.add_row(
            f"{engine}: record() from {thr['threads']} threads",
            f"{thr['per_second']:,.0f}/s ({thr['entries_per_transaction']:.1f} per transaction)",
            f"≥ {APPEND_PER_SECOND:,}/s {verdict(thr['per_second'] >= APPEND_PER_SECOND)}",
        )
        table.add_row(
            f"{engine}: record_many() of {bat['batch']:,}",
            f"{bat['per_second']:,.0f}/s",
            f"≥ {APPEND_PER_SECOND:,}/s {verdict(bat['per_second'] >= APPEND_PER_SECOND)}",
        )
    proofs = results["proofs"]
    built = f", built in {proofs['build_seconds']:.0f} s" if proofs["build_seconds"] else ""
    table.add_row(
        f"inclusion proof at {proofs['size']:,}",
        f"p50 {proofs['inclusion_p50_ms']:.3f} ms, p99 {proofs['inclusion_p99_ms']:.3f} ms "
        f"({proofs['database_gib']:.1f} GiB{built})",
        f"≤ {INCLUSION_MS} ms {verdict(proofs['inclusion_p50_ms'] <= INCLUSION_MS)}",
    )
    table.add_row(
        f"consistency proof at {proofs['size']:,}",
        f"p50 {proofs['consistency_p50_ms']:.3f} ms, p99 {proofs['consistency_p99_ms']:.3f} ms",
        "",
    )
    table.add_row(f"root hash at {proofs['size']:,}", f"{proofs['root_ms']:.2f} ms", "")
    for engine, append in results["append"].items():
        table.add_row(f"{engine}: sign a checkpoint", f"{append['checkpoint_ms']:.2f} ms", "")
    ver = results["verify"]
    table.add_row(
        f"carelight audit verify, {ver['size']:,} entries",
        f"{ver['seconds']:.1f} s ({ver['per_second']:,.0f} entries/s, "
        f"{ver['database_gib']:.2f} GiB)",
        f"≤ {VERIFY_SECONDS:.0f} s {verdict(ver['seconds'] <= VERIFY_SECONDS)}",
    )
    console.print(table)
    m = results["machine"]
    console.print(
        f"{m['cpu']}, {m['nproc']} cores, {m['ram_gib']} GiB, {m['os']}, Python {m['python']}, "
        f"commit {m['commit']}, {results['date']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small logs: a smoke run")
    parser.add_argument("--proof-size", type=int, help="leaves in the proof log (10,000,000)")
    parser.add_argument("--verify-size", type=int, help="entries in the verify log (1,000,000)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached logs")
    parser.add_argument("--postgres", action="store_true", help="append on PostgreSQL too")
    args = parser.parse_args(argv)
    proof_size = args.proof_size or (100_000 if args.quick else 10_000_000)
    verify_size = args.verify_size or (100_000 if args.quick else 1_000_000)
    sequential, threaded, batched = (
        (5_000, 8_000, 50_000) if args.quick else (20_000, 40_000, 200_000)
    )
    DATA_DIR.mkdir(parents=True, exist_ok=True)

    results: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine_info()}
    console.print("appending …")
    results["append"] = {"sqlite": bench_append(None, sequential, threaded, batched)}
    if args.postgres:
        with postgres_url() as url:
            results["append"]["postgresql"] = bench_append(url, sequential, threaded, batched)
    console.print(f"proofs at {proof_size:,} …")
    results["proofs"] = bench_proofs(proof_size, args.rebuild, 1000 if args.quick else 3000)
    console.print(f"verify over {verify_size:,} …")
    results["verify"] = bench_verify(verify_size, args.rebuild)
    RESULTS.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (the test suite's tests/pgcluster.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PostgresCluster, find_server_binaries

    bindir = find_server_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (make test installs them)")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        yield cluster.create_database("audit_bench")
    finally:
        cluster.stop()  # also deletes its data directory


if __name__ == "__main__":
    raise SystemExit(main())
