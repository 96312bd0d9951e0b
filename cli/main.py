"""Entry point of the ``mangaassist`` console script: assembles the typer app from command modules."""

from __future__ import annotations

import importlib
import sys

import typer
from pydantic import ValidationError

from core.settings import describe_settings_error, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="MangaAssist: a multi-agent manga-store assistant.")
eval_app = typer.Typer(no_args_is_help=True, help="Quality evaluations on the shipped development splits.")
bench_app = typer.Typer(no_args_is_help=True, help="Performance benchmarks that print figures.")


@app.callback()
def _check_settings() -> None:
    """Read the ``MANGAASSIST_*`` settings once before any command: an invalid value is a usage error (exit
    code 2, one line per bad variable) rather than a traceback halfway through a command."""
    try:
        get_settings()
    except ValidationError as exc:
        print(f"mangaassist: invalid settings in the environment\n{describe_settings_error(exc)}", file=sys.stderr)
        raise typer.Exit(2) from None


app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")

# Each command module defines ``register(app, eval_app, bench_app)``; one module per command family.
_COMMAND_MODULES = (
    "cli.chat_cmds",
    "cli.classify_cmds",
    "cli.search_cmds",
    "cli.recommend_cmds",
    "cli.orders_cmds",
    "cli.serve_cmds",
    "cli.bench_cmds",
    "cli.admin_cmds",
    "cli.bench_models_cmds",
    "cli.soak_cmds",
    "cli.train_cmds",
    "cli.bench_startup_cmds",
    "cli.eval_fresh_cmds",
    "cli.eval_conversations_cmds",
)

for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a command family not built yet in this checkout
        if exc.name != _name:
            raise
        continue
    _mod.register(app, eval_app, bench_app)


if __name__ == "__main__":
    app()
