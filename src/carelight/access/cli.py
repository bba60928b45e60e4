"""``carelight users …`` and ``carelight token``."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Accounts.", no_args_is_help=True)


def token(user: str = typer.Option(..., "--user", help="Account name")) -> None:
    """Print a bearer token for an account (an operator's tool that reads the local database)."""
    raise typer.Exit(2)
