"""`mangaassist serve` (uvicorn on the app factory) and `mangaassist keys create|revoke` (API keys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import typer

from cli.runtime import fail, print_json, run, small_pool
from core.settings import get_settings


async def _with_accounts(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open the accounts repository on the configured database (Postgres with DATABASE_URL, else SQLite)."""
    from server.accounts import open_accounts

    settings = get_settings()
    async with AsyncExitStack() as stack:
        pool = await small_pool(settings, stack)
        accounts = await open_accounts(settings, pool=pool)
        stack.push_async_callback(accounts.close)
        return await fn(accounts)


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the serve commands to the CLI (``app``; ``eval_app`` and ``bench_app`` are the sub-apps)."""
    keys_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP/WebSocket server (stored hashed).")
    app.add_typer(keys_app, name="keys")

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
        workers: int = typer.Option(1, "--workers", min=1, max=64,
                                    help="Worker processes; with >1 set REDIS_URL so runs and streams are shared."),
        log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error."),
    ) -> None:
        """Serve the /v1 API, the WebSocket and the LangGraph API subset (docs at /v1/docs). JSON logs on stderr."""
        import uvicorn

        from server.logs import configure_json_logging

        settings = get_settings()
        if settings.profile == "bedrock":  # fail with exit 2 here, not inside the worker's lifespan (uvicorn: exit 3)
            from core.errors import ConfigurationError
            from tools.backends.models.bedrock import check_startup

            try:
                check_startup(settings)
            except ConfigurationError as exc:
                fail(str(exc))
        if workers > 1 and not settings.redis_url:
            typer.echo("warning: several workers without REDIS_URL: double-texting checks, WebSocket fan-out and "
                       "cancellation only work within one worker", err=True)
        configure_json_logging(log_level.upper())
        uvicorn.run("server.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_config=None, access_log=False, log_level=log_level, ws_max_size=1 << 20)

    @keys_app.command("create")
    def keys_create(
        user: str = typer.Option(..., "--user", help="User id the key authenticates as (e.g. u_ben)."),
        label: str = typer.Option("", "--label", help="Free text to recognise the key later."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Create an API key and print it once (only its SHA-256 hash is stored)."""
        async def main() -> tuple[str, dict]:
            return await _with_accounts(lambda acc: acc.create_key(user, label))

        key, rec = run(main)
        if as_json:
            print_json({"api_key": key, **rec})
        else:
            typer.echo(key)
            typer.echo(f"user={rec['user_id']} prefix={rec['key_prefix']} (store it now: it is not shown again)",
                       err=True)

    @keys_app.command("revoke")
    def keys_revoke(key: str = typer.Argument(..., help="Key prefix (ma_ + 8 chars), SHA-256 hash, or the key.")) -> None:
        """Revoke an API key; requests with it get 401 from then on."""
        async def main() -> dict:
            return await _with_accounts(lambda acc: acc.revoke_key(key))

        try:
            rec = run(main)
        except LookupError as exc:
            fail(str(exc))
        print_json(rec)
