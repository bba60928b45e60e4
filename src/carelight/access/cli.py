"""``carelight users …`` and ``carelight token``: operators' tools that use the local database.

They read ``CARELIGHT_HOME`` and ``CARELIGHT_DATABASE_URL`` like the server, so a token made
here verifies there (set ``CARELIGHT_BASE_URL`` to the server's FHIR base if it is not the
default ``http://127.0.0.1:8000/fhir``). Messages go to stderr; ``carelight token`` prints only
the token on stdout, so ``TOKEN=$(carelight token --user gp)`` works.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from carelight.access.accounts import AccountError, AccountStore, principal_for
from carelight.access.grants import ScopeRefused, narrow
from carelight.access.principal import Role
from carelight.config import Settings

users_app = typer.Typer(help="Accounts and registered apps.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _open():
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    store = open_store(settings.database_url, settings.base_url)
    return settings, store, AccountStore(store.engine)


def _fail(message: str, code: int = 1):
    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def _password(from_stdin: bool, what: str = "Password") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(what, hide_input=True, confirmation_prompt=True, err=True)


@users_app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo accounts (see docs/access.md) from the loaded synthetic population."""
    from carelight.access.demo import DEMO_APP, DEMO_PASSWORD, DemoSeedError, seed_demo

    _settings, store, accounts = _open()
    try:
        seeded = seed_demo(accounts, store)
    except DemoSeedError as exc:
        _fail(str(exc))
    table = Table(title="Demo accounts", show_edge=False)
    for column in ("username", "role", "name", "organisation", ""):
        table.add_column(column)
    for s in seeded:
        table.add_row(
            s.username,
            s.role.value,
            s.display,
            s.organization or "",
            "created" if s.created else "already there",
        )
    out.print(table)
    made = sum(s.created for s in seeded)
    out.print(
        f"{made} created, {len(seeded) - made} already there. Every demo account's password "
        f"(and every source client's secret) is [bold]{DEMO_PASSWORD}[/bold]. Patients sign in "
        f"with their NHS number. Registered app for the OAuth flow: {DEMO_APP}.",
        highlight=False,
    )


@users_app.command("list")
def list_command() -> None:
    """List the accounts."""
    _settings, _store, accounts = _open()
    table = Table(show_edge=False)
    for column in ("username", "role", "name", "organisation", "patient", "scopes", "status"):
        table.add_column(column)
    for a in accounts.list():
        table.add_row(
            a.username,
            a.role.value,
            a.display,
            a.organization_code or "",
            a.patient_id or "",
            " ".join(sorted(a.scopes)),
            "disabled" if a.disabled else "",
        )
    # Piped (not a terminal): never cut a username or code short to fit a guessed width.
    (out if out.is_terminal else Console(width=240)).print(table)


@users_app.command("add")
def add_command(
    username: str = typer.Argument(..., help="Username; a patient's is their NHS number"),
    role: Role = typer.Option(..., "--role", help="The account's role"),
    organization: str = typer.Option(
        None, "--organization", help="ODS code of the organisation (professionals, systems)"
    ),
    display: str = typer.Option("", "--name", help="Name shown to people"),
    patient_id: str = typer.Option(
        None, "--patient-id", help="Patient to link (default: their GP practice's record)"
    ),
    scope: list[str] = typer.Option(None, "--scope", help="Allowed scope (default: the role's)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password (client secret) from stdin"
    ),
) -> None:
    """Create an account."""
    from carelight.access import directory
    from carelight.identity.nhs_number import normalise_nhs_number

    _settings, store, accounts = _open()
    org = None
    if organization:
        org = directory.organization(store, organization)
        if org is None:
            _fail(f"No Organization with ODS code {organization} is in the store.")
    if role is Role.PATIENT and not patient_id:
        nhs = normalise_nhs_number(username)
        record = directory.registered_record(store, nhs) if nhs else None
        if nhs and record is None:
            _fail("No Patient with that NHS number is in the store; give --patient-id.")
        if record is not None:
            patient_id = record["id"]
            display = display or directory.display_name(record)
    password = _password(password_stdin)
    try:
        account = accounts.create(
            username,
            role,
            password=password,
            display=display,
            organization=org,
            patient_id=patient_id,
            scopes=set(scope) if scope else None,
        )
    except AccountError as exc:
        _fail(str(exc))
    err.print(f"Created {account.role.value} account '{account.username}'.", highlight=False)


@users_app.command("set-password")
def set_password_command(
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin"),
) -> None:
    """Set an account's password (a source client's secret)."""
    _settings, _store, accounts = _open()
    try:
        accounts.set_password(username, _password(password_stdin, "New password"))
    except AccountError as exc:
        _fail(str(exc))
    err.print("Password changed.")


@users_app.command("disable")
def disable_command(username: str) -> None:
    """Stop an account signing in, and end its web sessions (tokens expire within the hour)."""
    _settings, _store, accounts = _open()
    try:
        accounts.disable(username)
    except AccountError as exc:
        _fail(str(exc))
    err.print(f"'{username}' is disabled.", highlight=False)


@users_app.command("enable")
def enable_command(username: str) -> None:
    """Let a disabled account sign in again."""
    _settings, _store, accounts = _open()
    try:
        accounts.enable(username)
    except AccountError as exc:
        _fail(str(exc))
    err.print(f"'{username}' is enabled.", highlight=False)


@users_app.command("add-app")
def add_app_command(
    client_id: str,
    redirect_uri: list[str] = typer.Option(..., "--redirect-uri", help="Where to send codes"),
    name: str = typer.Option("", "--name", help="Name shown on the sign-in page"),
) -> None:
    """Register an app (a public OAuth client using PKCE) that people can sign in to."""
    from carelight.access.oauth import OAuthApps

    _settings, store, _accounts = _open()
    try:
        OAuthApps(store.engine).register(client_id, name, redirect_uri)
    except ValueError as exc:
        _fail(str(exc))
    err.print(f"Registered app '{client_id}'.", highlight=False)


def token(
    user: str = typer.Option(..., "--user", help="Account name"),
    scope: str = typer.Option(None, "--scope", help="Scopes (space-separated; default: all)"),
    lifetime: int = typer.Option(3600, "--lifetime", min=60, help="Seconds until it expires"),
) -> None:
    """Print a bearer token for an account (an operator's tool that reads the local database).

    Like every token, it is recorded in the transparency log first; if that fails, no token.
    """
    from carelight.access.tokens import TokenService
    from carelight.audit.events import AccessEvent
    from carelight.audit.trail import log_engine, open_trail

    settings, store, accounts = _open()
    account = accounts.get(user)
    if account is None:
        _fail(
            f"There is no account called '{user}'. `carelight users list` shows the accounts; "
            "`carelight users seed-demo` creates the demo ones."
        )
    if account.disabled:
        _fail(f"'{account.username}' is disabled.")
    try:
        granted = narrow(account.scopes, scope)
    except ScopeRefused as exc:
        _fail(str(exc))
    principal = principal_for(account, granted)
    issued = TokenService.from_settings(settings).issue(principal, lifetime=lifetime)
    trail = open_trail(log_engine(settings, store.engine), settings)
    try:
        trail.record(AccessEvent("token", "success", account.username, principal))
    except Exception as exc:
        _fail(f"The transparency log could not record the token, so none was issued: {exc}")
    finally:
        trail.close()
    typer.echo(issued)
