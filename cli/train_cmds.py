"""`mangaassist train`: rebuild the shipped router and title embeddings (data/models), or check they are current."""

from __future__ import annotations

import typer

from cli.runtime import print_json
from core.settings import get_settings


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the train commands to the CLI (``app``; ``eval_app`` and ``bench_app`` are the sub-apps)."""
    @app.command()
    def train(
        check: bool = typer.Option(False, "--check", help="Only verify the shipped files against the current data and "
                                                          "code; exit 1 when any is stale."),
    ) -> None:
        """Fit the local router and embed the catalog's title forms into data/models (with manifest.json).

        Run after changing the router's code, its training data or the catalog; commit data/models. A fresh
        install loads these instead of fitting (~10 minutes on 2 cores). ``--check`` runs in CI (~1 s).
        """
        from tools.backends.build_artifacts import build_artifacts, check_artifacts

        if check:
            problems = check_artifacts()
            for p in problems:
                typer.echo(f"stale: {p}", err=True)
            if problems:
                typer.echo("run `mangaassist train` and commit data/models", err=True)
                raise typer.Exit(code=1)
            typer.echo("data/models is current")
            return
        print_json(build_artifacts(get_settings().model_dir))
