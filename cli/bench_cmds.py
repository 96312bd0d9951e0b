"""CLI commands of the bench family: ``mangaassist bench turns`` (durable-turn throughput, latency, bytes)."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json, run


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``turns`` to ``bench_app`` (``app`` and ``eval_app`` are unused by this family)."""

    @bench_app.command("turns")
    def turns_cmd(
        backend: str = typer.Option("sqlite", "--backend", help="none | sqlite | postgres (postgres reads DATABASE_URL)."),
        sessions: int = typer.Option(32, "--sessions", help="Concurrent sessions (asyncio tasks, one thread each), >= 1."),
        turns: int = typer.Option(20, "--turns", help="Turns per session, >= 1."),
        durability: str = typer.Option(None, "--durability", help="sync | async | exit (default: the project's default)."),
        untuned: bool = typer.Option(False, "--untuned", help="Postgres with library defaults (no lz4): the 'before' setup."),
        keep_last: int = typer.Option(20, "--keep-last", help="Postgres: prune the bench threads to K checkpoints after the run and "
                                                                   "re-time history (0 = skip)."),
        rounds: int = typer.Option(4, "--rounds", help="Blocks of turns in which the baseline and checkpointed phases alternate, >= 1."),
        as_json: bool = typer.Option(False, "--json", help="Print only the JSON line (no table)."),
    ) -> None:
        """Run the supervisor graph on N concurrent sessions x M turns with the chosen checkpointer and, in the
        same run, with no checkpointer; print a table and one JSON line (turns_per_s, p50/p99 ms,
        p50_ms_by_turn, checkpoint bytes and rows per turn, history_ms, baseline, and the database's durability
        settings: db_settings, db_durable). Publish only figures measured with db_durable true."""
        from bench.turns import BACKENDS, render_table, run_turns_bench
        from core.settings import get_settings
        from tools.backends.persistence import DURABILITY_MODES

        if backend not in BACKENDS:
            fail(f"--backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
        if keep_last < 0:
            fail("--keep-last must be >= 0")
        if sessions < 1 or turns < 1 or rounds < 1:
            fail("--sessions, --turns and --rounds must be >= 1")
        if durability is not None and durability not in DURABILITY_MODES:
            fail(f"--durability must be one of {', '.join(DURABILITY_MODES)} (got {durability!r})")
        settings = get_settings()
        if backend == "postgres" and not settings.database_url:
            fail("--backend postgres needs DATABASE_URL")
        report = run(lambda: run_turns_bench(backend, sessions, turns, settings=settings, durability=durability,
                                             tuned=not untuned, keep_last=keep_last or None, rounds=rounds))
        if not as_json:
            from rich.console import Console

            Console(stderr=True).print(render_table(report))
        print_json(report)
