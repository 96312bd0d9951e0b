"""CLI command of the soak family: ``mangaassist bench soak`` (concurrent sessions against a real server)."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``soak`` to ``bench_app``."""

    @bench_app.command("soak")
    def soak_cmd(
        sessions: int = typer.Option(64, "--sessions", help="Concurrent chat sessions (one thread each), >= 1."),
        seconds: float = typer.Option(600.0, "--seconds", help="Duration (s), > 0."),
        url: str = typer.Option(None, "--url", help="A running server on 127.0.0.1 (default: start our own with "
                                                   "this environment: DATABASE_URL, REDIS_URL, profile)."),
        key: list[str] = typer.Option(None, "--key", help="API key(s) for --url (repeatable)."),  # noqa: B008
        pid: int = typer.Option(None, "--pid", help="With --url: the server's pid, for RSS."),
        as_json: bool = typer.Option(False, "--json", help="Print only the JSON line."),
    ) -> None:
        """Hold N sessions for D seconds; print errors, p50/p99 per minute, server RSS and open database
        connections at start and end, then one JSON line."""
        import asyncio

        from bench.soak import render_table, run_soak, soak_own_server
        from core.settings import get_settings

        if sessions < 1 or seconds <= 0:
            fail("--sessions must be >= 1 and --seconds > 0")
        if url:
            if not key:
                fail("--url needs at least one --key")
            try:
                rep = asyncio.run(run_soak(url, list(key), sessions, seconds, server_pid=pid,
                                           dsn=get_settings().database_url))
            except ValueError as exc:
                fail(str(exc))
        else:
            rep = soak_own_server(sessions, seconds)
        if not as_json:
            from rich.console import Console

            Console(stderr=True).print(render_table(rep))
        print_json(rep.as_dict())
