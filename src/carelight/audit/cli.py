"""``carelight audit …``"""

from __future__ import annotations

import typer

app = typer.Typer(help="The transparency log.", no_args_is_help=True)
