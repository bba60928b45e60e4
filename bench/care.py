"""The shared care record's summary page (issue 6: p50 at most 100 ms for a person with about
300 resources).

Builds a synthetic population (``carelight synth`` + ``load`` + ``users seed-demo``, kept in
``bench/.data/care-<people>``), serves it with ``carelight serve``, signs in as the demo GP in
the browser's way (form, cookie), chooses the practice's patient whose whole record, across
every source, is nearest 300 resources, and times ``GET /care/patient/<id>``: the gate, the
reads, the transparency log entry and the page. Times are measured by the client over
loopback, so they are an upper bound on the server's time.

    .venv/bin/python -m bench.care [--quick] [--people N] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
from rich.console import Console

from bench.run import DATA_DIR, carelight_command, free_port, machine_info, stop_process_group

console = Console()
GP = "Y99101"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
TARGET_MS = 100.0
WANTED = 300


def build(people: int, seed: int) -> tuple[Path, Path]:
    root = DATA_DIR / f"care-{people}-{seed}"
    home, out = root / "home", root / "synth"
    env = {"CARELIGHT_HOME": str(home)}
    if not (home / "care-ready").exists():
        home.mkdir(parents=True, exist_ok=True)
        for args in (
            ("synth", "--people", str(people), "--seed", str(seed), "--out", str(out)),
            ("load", str(out)),
            ("users", "seed-demo"),
        ):
            console.print(f"carelight {' '.join(args)}")
            subprocess.run(
                [*carelight_command(), *args], env=_env(env), check=True, capture_output=True
            )
        (home / "care-ready").write_text("ok")
    return home, out


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {**os.environ, **extra}
    env.pop("CARELIGHT_DATABASE_URL", None)
    return env


def record_sizes(out: Path) -> dict[str, tuple[str, int]]:
    """NHS number -> (the GP practice's Patient id, resources in the person's whole record)."""
    nhs_of: dict[str, str] = {}
    gp_record: dict[str, str] = {}
    for path in out.glob("*/Patient.ndjson"):
        for line in path.open():
            p = json.loads(line)
            nhs = next(
                (i["value"] for i in p.get("identifier", ()) if i.get("system") == NHS), None
            )
            if nhs:
                nhs_of[p["id"]] = nhs
                if path.parent.name == GP:
                    gp_record[nhs] = p["id"]
    counts: dict[str, int] = defaultdict(int)
    pattern = re.compile(r'"(?:subject|patient)":\{"reference":"Patient/([^"]+)"')
    for path in out.glob("*/*.ndjson"):
        for line in path.open():
            if path.name == "Patient.ndjson":
                pid = json.loads(line)["id"]
            else:
                found = pattern.search(line)
                pid = found.group(1) if found else None
            if pid in nhs_of:
                counts[nhs_of[pid]] += 1
    return {nhs: (gp_record[nhs], counts[nhs]) for nhs in gp_record}


def sign_in(client: httpx.Client, username: str) -> None:
    page = client.get("/signin", params={"next": "/care"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    form = {"csrf": csrf, "next": "/care", "username": username, "password": "carelight-demo"}
    response = client.post("/signin", data=form)
    response.raise_for_status()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="200 people, 50 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.requests = 200, 50
    home, out = build(args.people, args.seed)
    sizes = record_sizes(out)
    _nhs, (patient_id, size) = min(sizes.items(), key=lambda kv: abs(kv[1][1] - WANTED))
    port = free_port()
    log_path = home / "serve.log"
    env = _env({"CARELIGHT_HOME": str(home), "CARELIGHT_BASE_URL": f"http://127.0.0.1:{port}/fhir"})
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*carelight_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/fhir/metadata").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    console.print(log_path.read_text()[-2000:])
                    return 1
                time.sleep(0.1)
            sign_in(client, "gp")
            url = f"/care/patient/{patient_id}"
            for _ in range(10):  # warm up: caches, the compiled gate checks
                assert client.get(url).status_code == 200
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
    finally:
        stop_process_group(proc)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    verdict = "pass" if p50 <= TARGET_MS else "FAIL"
    info = machine_info()
    console.print(
        f"care summary page, a person with {size} resources in their record "
        f"({args.people:,} people): p50 {p50:.1f} ms, p95 {p95:.1f} ms, n={len(times)}; "
        f"target p50 <= {TARGET_MS:.0f} ms: {verdict}"
    )
    console.print(f"machine: {info}")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
