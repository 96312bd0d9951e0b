"""`mangaassist prune`: checkpoint retention on Postgres (keep the latest K per thread, drop old ones)."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json, run
from core.settings import get_settings


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the admin commands to the CLI (``app``; ``eval_app`` and ``bench_app`` are the sub-apps)."""
    @app.command()
    def prune(
        keep_last: int | None = typer.Option(None, "--keep-last", help="Checkpoints kept per thread (default: settings.checkpoint_keep_last)."),
        max_age_days: float | None = typer.Option(None, "--max-age-days", help="Also drop checkpoints older than this (default: settings)."),
    ) -> None:
        """Apply checkpoint retention to every thread in DATABASE_URL (the latest checkpoint is always kept)."""
        settings = get_settings()
        if not settings.database_url:
            fail("prune needs DATABASE_URL (SQLite checkpoints are local files; delete threads instead)")
        keep = settings.checkpoint_keep_last if keep_last is None else keep_last
        if keep < 1:
            fail("--keep-last must be at least 1")
        age = settings.checkpoint_max_age_days if max_age_days is None else max_age_days

        async def main() -> dict:
            from dataclasses import asdict

            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            from tools.backends.persistence import open_postgres_pool, prune_checkpoints

            pool = await open_postgres_pool(settings.database_url, 1, 2)
            try:
                await AsyncPostgresSaver(pool).setup()  # idempotent; a fresh database has nothing to prune
                return asdict(await prune_checkpoints(pool, keep_last=keep, max_age_days=age))
            finally:
                await pool.close()

        print_json(run(main))
