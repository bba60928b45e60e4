"""``carelight sde disclosure``: check output files from the command line.

``check FILE... [--policy P] [--released EVIDENCE]... [--out DIR]`` writes each file's safe
version and evidence record and prints the outcome (files are checked in the order given, each
against the ones before it, as they would be released together); the exit code is 0 for pass or pass-with-changes,
1 for needs-review and 2 for fail, so a script can stop on a failed check.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from carelight.sde.disclosure.check import check_output
from carelight.sde.disclosure.policy import BUILT_IN, PolicyError, load_policy

app = typer.Typer(
    help="Disclosure control of aggregate outputs.", no_args_is_help=True, add_completion=False
)

EXIT = {"pass": 0, "pass-with-changes": 0, "needs-review": 1, "fail": 2}


@app.command("check")
def check(
    files: list[Path] = typer.Argument(
        ..., help="Output files to check.", exists=True, dir_okay=False
    ),
    policy: str = typer.Option(
        None,
        "--policy",
        "-p",
        help=f"A built-in policy ({', '.join(BUILT_IN)}) or a TOML/JSON policy file; "
        "default CARELIGHT_SDC_POLICY or nhs-england.",
    ),
    released: list[Path] = typer.Option(
        [],
        "--released",
        "-r",
        help="Evidence record of a table the project has already released (repeatable).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for safe files and evidence."),
    as_json: bool = typer.Option(False, "--json", help="Print the evidence records as JSON."),
) -> None:
    """Check output files and write each one's safe version and evidence record."""
    try:
        pol = load_policy(policy)
    except PolicyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from None
    worst = 0
    records = []
    known: list = list(released)
    for f in files:
        result = check_output(f, pol, released=known, out_dir=out)
        if result.published is not None:  # later files are checked against this one too
            known.append(result.published)
        worst = max(worst, EXIT[result.outcome])
        if as_json:
            records.append(result.evidence.to_dict())
            continue
        typer.echo(f"{f.name}: {result.outcome} (policy {pol.name} v{pol.version})")
        for reason in result.evidence.reasons:
            typer.echo(f"  - {reason}")
        if result.safe_path:
            typer.echo(f"  safe version: {result.safe_path}")
        typer.echo(f"  evidence: {result.evidence_path}")
    if as_json:
        typer.echo(json.dumps(records, indent=1, ensure_ascii=False))
    raise typer.Exit(worst)


@app.command("policy")
def show_policy(
    policy: str = typer.Argument(None, help="A built-in policy name or a policy file."),
) -> None:
    """Print a policy's parameters as JSON."""
    try:
        pol = load_policy(policy)
    except PolicyError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(
        json.dumps(
            {
                "name": pol.name,
                "version": pol.version,
                "description": pol.description,
                "parameters": pol.parameters(),
            },
            indent=1,
        )
    )
