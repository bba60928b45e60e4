"""``carelight sde job|review|release …``: jobs, output checking and releases from the
command line, as an operator's tool over the local database (``--as USER`` names the account
acted as). The rules are the same functions the API and the pages call. A job submitted here
runs in the foreground (on dummy data; ``job real`` runs its code on the real store).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

job_app = typer.Typer(help="Jobs: submit, list, show, run on real data.", no_args_is_help=True)
review_app = typer.Typer(help="Output checking: the queue and the vote.", no_args_is_help=True)
release_app = typer.Typer(help="Released outputs: list and download.", no_args_is_help=True)

AS_USER = typer.Option(..., "--as", help="The account to act as (e.g. researcher, checker1)")


def _run(action):
    """Open the SDE's services, act, close; a refusal is a message and exit code 1."""
    from carelight.sde.cli import _fail, _Opened
    from carelight.sde.governance import GovernanceError
    from carelight.sde.jobs.records import Jobs

    opened = _Opened()
    try:
        jobs = Jobs(opened.store.engine, opened.trail, opened.settings)
        return action(opened, jobs)
    except GovernanceError as exc:
        _fail(exc.message)
    finally:
        opened.close()


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def _job(jobs, who, job) -> dict:
    from carelight.sde.review.api import job_view

    return job_view(job, jobs.outputs_seen_by(who, job))


@job_app.command("submit")
def submit(
    project: int = typer.Option(..., "--project", help="The active project"),
    as_user: str = AS_USER,
    title: str = typer.Option(..., "--title"),
    definition: Path = typer.Option(..., "--definition", exists=True, dir_okay=False),
    script: Path = typer.Option(..., "--script", exists=True, dir_okay=False),
) -> None:
    """Submit a dataset definition and analysis script; it runs now on dummy data."""

    def action(o, jobs):
        who = o.who(as_user)
        job = jobs.submit(who, project, title, definition.read_text(), script.read_text())
        return _job(jobs, who, jobs.execute(job.id))

    _print(_run(action))


@job_app.command("real")
def real(job_id: int = typer.Argument(..., metavar="JOB"), as_user: str = AS_USER) -> None:
    """Run a succeeded dummy job's frozen code on the project's real research store."""

    def action(o, jobs):
        who = o.who(as_user)
        job = jobs.run_real(who, job_id)
        return _job(jobs, who, jobs.execute(job.id))

    _print(_run(action))


@job_app.command("list")
def list_jobs(
    as_user: str = AS_USER, project: int | None = typer.Option(None, "--project")
) -> None:
    """The jobs the account may see."""

    def action(o, jobs):
        who = o.who(as_user)
        return [_job(jobs, who, j) for j in jobs.visible_to(who, project)]

    _print(_run(action))


@job_app.command("show")
def show(job_id: int = typer.Argument(..., metavar="JOB"), as_user: str = AS_USER) -> None:
    """One job: its record, outputs and disclosure evidence."""

    def action(o, jobs):
        who = o.who(as_user)
        return _job(jobs, who, jobs.require_visible(who, job_id))

    _print(_run(action))


@review_app.command("list")
def review_list(as_user: str = AS_USER) -> None:
    """Files waiting for this checker."""
    from carelight.sde.review import checking
    from carelight.sde.review.api import output_view

    _print(_run(lambda o, jobs: [
        {"job": j.id, "project": j.project_id} | output_view(out)
        for j, out in checking.queue(jobs, o.who(as_user))
    ]))  # fmt: skip


@review_app.command("show")
def review_show(output_id: int = typer.Argument(..., metavar="OUTPUT"), as_user: str = AS_USER):
    """The safe version of a file to check, its evidence and the votes you may see."""
    from carelight.sde.review import checking
    from carelight.sde.review.api import output_view

    def action(o, jobs):
        who = o.who(as_user)
        job, out, data = checking.for_checking(jobs, who, output_id)
        return output_view(out) | {
            "job": job.id, "safe_content": data.decode("utf-8", "replace"),
            "votes": [v.__dict__ for v in checking.votes_seen_by(jobs, who, out.id)],
        }  # fmt: skip

    _print(_run(action))


@review_app.command("vote")
def review_vote(
    output_id: int = typer.Argument(..., metavar="OUTPUT"),
    as_user: str = AS_USER,
    decision: str = typer.Option(..., "--decision", help="approve, request-changes or reject"),
    comment: str = typer.Option(..., "--comment", help="Read by the researcher"),
) -> None:
    """Vote on one file (blind: the other vote is shown once both have voted)."""
    from carelight.sde.review import checking

    def action(o, jobs):
        out, vote = checking.vote(jobs, o.who(as_user), output_id, decision, comment)
        return {"output": out.id, "review": out.review, "vote": vote.__dict__}

    _print(_run(action))


@release_app.command("list")
def release_list(as_user: str = AS_USER) -> None:
    """Releases of the account's projects."""
    from carelight.sde.review import release

    _print(
        _run(lambda o, jobs: [r.__dict__ for r in release.visible_releases(jobs, o.who(as_user))])
    )


@release_app.command("download")
def release_download(
    release_id: int = typer.Argument(..., metavar="RELEASE"),
    as_user: str = AS_USER,
    out: Path = typer.Option(Path("."), "--out", help="The folder to write the file to"),
) -> None:
    """Write a released file (a project member only)."""
    from carelight.sde.review import release

    def action(o, jobs):
        r, data = release.download(jobs, o.who(as_user), release_id)
        target = out / Path(r.path).name
        out.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    print(_run(action))
