"""``carelight sde …``: the secure data environment from the command line.

An operator's tool over the local database, like ``carelight users``: ``--as USER`` names the
account a governance action is taken as (the rules are the same as over the API: only the data
access committee approves, only a member submits, ...), and every change is appended to the
transparency log. ``carelight sde extract`` builds a project's research store through the gate.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from carelight.config import Settings

app = typer.Typer(
    help="The secure data environment: projects, extracts, the query language, jobs, checking.",
    no_args_is_help=True,
)
project_app = typer.Typer(help="Research projects and their lifecycle.", no_args_is_help=True)
app.add_typer(project_app, name="project")
out = Console()
err = Console(stderr=True, soft_wrap=True)

AS_USER = typer.Option(..., "--as", help="The account to act as (e.g. researcher, dac)")


class _Opened:
    def __init__(self) -> None:
        from carelight.access.accounts import AccountStore
        from carelight.audit.trail import log_engine, open_trail
        from carelight.fhir.store import open_store
        from carelight.sde.governance import Governance

        self.settings = Settings.from_env()
        self.settings.ensure_home()
        self.store = open_store(self.settings.database_url, self.settings.base_url)
        self.trail = open_trail(log_engine(self.settings, self.store.engine), self.settings)
        self.accounts = AccountStore(self.store.engine)
        self.governance = Governance(self.store.engine, self.trail)

    def who(self, username: str):
        from carelight.access.accounts import principal_for

        account = self.accounts.get(username)
        if account is None or account.disabled:
            _fail(f"There is no (enabled) account {username!r}.")
        return principal_for(account)

    def close(self) -> None:
        self.trail.close()
        self.store.engine.dispose()


def _fail(message: str, code: int = 1):
    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def _run(action):
    """Open, act, close; a governance refusal becomes a clear message and exit code 1."""
    from carelight.sde.governance import GovernanceError

    opened = _Opened()
    try:
        return action(opened)
    except GovernanceError as exc:
        _fail(exc.message)
    finally:
        opened.close()


def _show(project) -> None:
    table = Table(show_header=False, show_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("Project", str(project.id)),
        ("Title", project.title),
        ("Status", project.status),
        ("Organisation", project.organisation),
        ("Lay summary", project.lay_summary),
        ("Purpose", project.purpose),
        ("Legal basis", project.legal_basis),
        ("Duty of confidentiality", project.confidentiality_basis),
        ("Opt-outs applied", "yes" if project.opt_outs_apply else "no (exempt)"),
        ("Commercial", "yes" if project.commercial else "no"),
        ("Tables", ", ".join(project.tables)),
        ("Members", ", ".join(project.members)),
        ("Dates", f"{project.start_date} to {project.end_date}"),
    ]
    if project.decision_reason:
        rows.append(("Decision", project.decision_reason))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    for e in project.events:
        when = dt.datetime.fromtimestamp(e.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        out.print(f"  {when}  {e.transition:<10} {e.to_status:<10} by {e.actor}", highlight=False)


@project_app.command("create")
def create(
    as_user: str = AS_USER,
    title: str = typer.Option(..., "--title"),
    lay_summary: str = typer.Option(..., "--lay-summary", help="What the public reads"),
    purpose: str = typer.Option(..., "--purpose", help="What the research is for"),
    legal_basis: str = typer.Option(..., "--legal-basis", help="e.g. public-task"),
    confidentiality_basis: str = typer.Option(
        "section-251", "--confidentiality-basis", help="Common-law duty of confidentiality basis"
    ),
    organisation: str = typer.Option(..., "--organisation"),
    tables: str = typer.Option(..., "--tables", help="Comma-separated research tables"),
    start: str = typer.Option(..., "--start", help="YYYY-MM-DD"),
    end: str = typer.Option(..., "--end", help="YYYY-MM-DD"),
    commercial: bool = typer.Option(False, "--commercial/--not-commercial"),
    members: str = typer.Option("", "--members", help="Other researchers, comma-separated"),
) -> None:
    """Create a draft project (as a researcher, who becomes its owner)."""
    fields = {
        "title": title, "lay_summary": lay_summary, "purpose": purpose,
        "legal_basis": legal_basis, "confidentiality_basis": confidentiality_basis,
        "organisation": organisation, "tables": tables, "start_date": start, "end_date": end,
        "commercial": commercial, "members": members,
    }  # fmt: skip
    project = _run(lambda o: o.governance.create(o.who(as_user), fields))
    err.print(f"Created project {project.id} (draft).")
    _show(project)


def _transition(name: str, help_text: str, reason_help: str | None):
    def command(
        project_id: int = typer.Argument(..., metavar="PROJECT"),
        as_user: str = AS_USER,
        reason: str = typer.Option(
            "", "--reason", help=reason_help or "A note, published with the decision"
        ),
    ) -> None:
        project = _run(
            lambda o: o.governance.transition(o.who(as_user), project_id, name, reason or None)
        )
        err.print(f"Project {project.id} is now {project.status}.")

    command.__doc__ = help_text
    project_app.command(name)(command)


_transition("submit", "Submit a draft to the data access committee (a member).", None)
_transition("approve", "Approve a submitted project (the data access committee).", None)
_transition(
    "reject", "Reject a submitted project (the committee).", "Why (required; it is published)"
)
_transition("activate", "Start an approved project (the committee or an administrator).", None)
_transition("close", "Close an approved or active project.", None)


@project_app.command("list")
def list_projects(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every project and its status (drafts included: this is the operator's view)."""
    projects = _run(lambda o: o.governance.list())
    if as_json:
        from carelight.sde.register import project_summary

        print(json.dumps([project_summary(p) for p in projects], indent=2))
        return
    table = Table(show_edge=False)
    for column in ("id", "status", "title", "organisation", "members"):
        table.add_column(column)
    for p in projects:
        table.add_row(str(p.id), p.status, p.title, p.organisation, ", ".join(p.members))
    out.print(table)


@project_app.command("show")
def show(project_id: int = typer.Argument(..., metavar="PROJECT")) -> None:
    """One project: its fields, members and every decision."""
    _show(_run(lambda o: o.governance.get(project_id)))


@app.command("accredit")
def accredit_command(
    username: str = typer.Argument(..., metavar="USER"),
    as_user: str = AS_USER,
    body: str = typer.Option(..., "--body", help="The accrediting body"),
    valid_from: str = typer.Option(..., "--from", help="YYYY-MM-DD"),
    valid_to: str = typer.Option(..., "--to", help="YYYY-MM-DD"),
) -> None:
    """Record a researcher's accreditation (the data access committee or an administrator)."""
    from carelight.sde.governance import accredit

    a = _run(
        lambda o: accredit(
            o.store.engine, o.trail, o.who(as_user), username, body, valid_from, valid_to
        )
    )
    err.print(f"{a.username} is accredited by {a.body} from {a.valid_from} to {a.valid_to}.")


@app.command("extract")
def extract_command(
    project_id: int = typer.Option(..., "--project", help="The approved or active project"),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (default) or spark"),
) -> None:
    """Build the project's research store through the gate (opt-outs applied, pseudonymised).

    Writes CARELIGHT_HOME/sde/projects/<project>/extracts/<extract-id>/: research.duckdb and
    parquet/<table>.parquet (with --engine spark, the Parquet only, written by Spark).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from carelight.sde.extract import ExtractError, run_extract

    opened = _Opened()
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:  # fmt: skip
            task = progress.add_task("Extracting", total=None)

            def tick(done: int, total: int, what: str) -> None:
                progress.update(task, completed=done, total=total, description=what)

            result = run_extract(
                opened.store, opened.trail, opened.settings, project_id, engine=engine,
                progress=tick,
            )  # fmt: skip
    except ExtractError as exc:
        _fail(str(exc))
    finally:
        opened.close()
    err.print(
        f"Extract {result.id} for project {project_id}: {result.people:,} people, "
        f"{sum(result.table_rows.values()):,} rows in {len(result.table_rows)} tables; "
        f"{result.opted_out:,} people left out for their opt-out"
        f"{'' if result.opt_outs_applied else ' (opt-outs do not apply: exempt basis)'}; "
        f"taken at log size {result.log_tree_size:,}.",
        highlight=False,
    )
    print(Path(result.folder))


# Issue 9: jobs, output checking and releases (carelight.sde.review.cli).
from carelight.sde.review.cli import job_app, release_app, review_app  # noqa: E402

app.add_typer(job_app, name="job")
app.add_typer(review_app, name="review")
app.add_typer(release_app, name="release")

# Issue 8: the query language (run, sql), dummy data (run-dummy); issue 9: the sandbox on its
# own (an operator's tool) and disclosure control of files.
from carelight.sde.disclosure.cli import app as disclosure_app  # noqa: E402
from carelight.sde.jobs.cli import app as sandbox_app  # noqa: E402
from carelight.sde.query.cli import run_command, sql_command  # noqa: E402
from carelight.sde.query.dummy_cli import run_dummy_command  # noqa: E402

app.command("run")(run_command)
app.command("sql")(sql_command)
app.command("run-dummy")(run_dummy_command)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(disclosure_app, name="disclosure")
