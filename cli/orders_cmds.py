"""`mangaassist orders` and `mangaassist demo-users`: the seeded orders database, as JSON."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json, run, small_pool
from core.settings import get_settings


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the orders commands to the CLI (``app``; ``eval_app`` and ``bench_app`` are the sub-apps)."""
    async def _with_repo(fn):
        from contextlib import AsyncExitStack

        from tools.backends.seed import open_orders_repository

        settings = get_settings()
        async with AsyncExitStack() as stack:
            pool = await small_pool(settings, stack)
            repo = await open_orders_repository(settings, pool=pool)
            stack.push_async_callback(repo.close)
            return await fn(repo)

    @app.command()
    def orders(
        user: str = typer.Option(..., "--user", help="Customer id."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    ) -> None:
        """List one customer's orders."""
        if not user.strip():
            fail("--user must not be empty")
        result = run(lambda: _with_repo(lambda r: r.list_orders(user)))
        views = [o.to_dict() for o in result]
        if as_json:
            print_json(views)
        else:
            for o in views:
                typer.echo(f"{o['order_id']}  {o['status']:<10}  ¥{o['total_jpy']:>7,}  " +
                           ", ".join(i["title"] for i in o["items"]))

    @app.command("demo-users")
    def demo_users(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
        """The seeded demo customers and their order ids."""
        users = run(lambda: _with_repo(lambda r: r.demo_users()))
        if as_json:
            print_json(users)
        else:
            for u in users:
                typer.echo(f"{u['user_id']:<10} {u.get('name', ''):<16} {u.get('locale', ''):<3} {' '.join(u['order_ids'])}")
