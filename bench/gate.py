"""What the gate and the transparency log add to a read (issue 4: at most 25 %).

One server over the benchmark store (``bench/run.py`` builds it) answers the same reads two
ways: ``/fhir/{type}/{id}``, through the gate (token, purpose, relationship check inside the
SQL, the log appended before the answer), and ``/ungated/{type}/{id}``, a route added here only
(never in the product) that does the read exactly as it was before the gate. Rounds alternate
so drift on a shared machine hits both alike; the ratio of the medians is the overhead.

    .venv/bin/python -m bench.gate [--quick] [--resources N]
"""

from __future__ import annotations

import argparse

from fastapi import Request
from rich.console import Console
from rich.table import Table

from bench.run import (
    BEARER,
    DATA_DIR,
    Client,
    default_database_url,
    ensure_wrk,
    gp_token,
    machine_info,
    make_plan,
    make_workload,
    percentile,
    prepare_store,
    running_server,
    throughput_wrk,
)

console = Console()


def bench_app():
    """The product's app plus one ungated read route, for comparison only."""
    from carelight.fhir.api import fhir_response
    from carelight.server import create_app

    app = create_app()

    @app.get("/ungated/{res_type}/{res_id}")
    def ungated_read(request: Request, res_type: str, res_id: str):
        stored = request.app.state.store.read(res_type, res_id)
        headers = {"ETag": stored.etag, "Last-Modified": stored.last_modified}
        return fhir_response(stored.content, 200, headers)

    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)
    url = default_database_url(args.resources)
    plan = make_plan(args.resources, args.seed)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    prepare_store(url, plan, args.rebuild)
    work = make_workload(plan, patients=min(200, plan.patients), reads=20_000, seed=args.seed + 2)
    paths = [p for p, _, _ in work.reads]
    rounds, per_round = (4, 250) if args.quick else (8, 500)
    server = running_server(url, args.workers, DATA_DIR / "gate-server.log", "bench.gate:bench_app")
    with server as (_, port):
        token = gp_token(plan, port)
        BEARER[:] = [token]
        client = Client("127.0.0.1", port, token)
        for path in paths[:200]:  # warm both paths (and check them)
            for route in (path, path.replace("/fhir/", "/ungated/", 1)):
                status, body, _ = client.get(route)
                if status != 200:
                    raise SystemExit(f"GET {route}: {status} {body[:300]!r}")
        gated: list[float] = []
        ungated: list[float] = []
        for r in range(rounds):
            chunk = paths[200 + r * per_round : 200 + (r + 1) * per_round]
            order = (("g", gated), ("u", ungated)) if r % 2 == 0 else (("u", ungated), ("g", gated))
            for kind, out in order:
                for path in chunk:
                    route = path if kind == "g" else path.replace("/fhir/", "/ungated/", 1)
                    status, _, ms = client.get(route)
                    if status != 200:
                        raise SystemExit(f"GET {route}: {status}")
                    out.append(ms)
        client.close()
        wrk = ensure_wrk(install=True)
        tput = {}
        if wrk:
            seconds = 5 if args.quick else 10
            for name, route_paths in (
                ("gated", paths),
                ("ungated", [p.replace("/fhir/", "/ungated/", 1) for p in paths]),
            ):
                tput[name] = throughput_wrk(
                    wrk, "127.0.0.1", port, route_paths, seconds, 16, threads=1
                )
    g50, u50 = percentile(gated, 50), percentile(ungated, 50)
    table = Table(
        title=f"Gate + log overhead on a read ({args.resources:,} resources, SQLite, "
        f"{args.workers} server process{'es' if args.workers > 1 else ''})"
    )
    for col in ("", "p50 ms", "p99 ms", "reads/s (wrk, 16 conn)"):
        table.add_column(col)
    for name, samples in (("through the gate + log", gated), ("ungated (same read)", ungated)):
        key = "gated" if samples is gated else "ungated"
        rate = f"{tput[key].requests / tput[key].seconds:,.0f}" if key in tput else "-"
        table.add_row(
            name,
            f"{percentile(samples, 50):.3f}",
            f"{percentile(samples, 99):.3f}",
            rate,
        )
    console.print(table)
    overhead = (g50 / u50 - 1) * 100
    console.print(
        f"Overhead at p50: {overhead:+.1f} % (target at most +25 %); "
        f"{len(gated):,} reads each, {rounds} alternating rounds. Machine: {machine_info()}"
    )
    return 0 if overhead <= 25 else 1


if __name__ == "__main__":
    raise SystemExit(main())
