"""`mangaassist chat`: one message (optionally as JSON) or an interactive chat on a thread."""

from __future__ import annotations

import typer
from rich.console import Console

from cli.runtime import print_json, run, with_assistant


def _render(console: Console, out: dict) -> None:
    console.print(out["answer"], markup=False, highlight=False)
    agents = ",".join(out["agents"]) or "-"
    console.print(f"[dim]intents={','.join(out['intents'])} agents={agents} "
                  f"total={out['timings_ms'].get('total', 0):.0f} ms thread={out['thread_id']}[/dim]")


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def chat(
        message: str | None = typer.Argument(None, help="One message; omit for an interactive chat."),
        thread: str | None = typer.Option(None, "--thread", help="Thread id to continue (new thread if omitted)."),
        user: str = typer.Option("u_ben", "--user", help="Authenticated customer id (see `mangaassist demo-users`)."),
        as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object for the turn."),
    ) -> None:
        """Talk to MangaAssist. A message on a thread waiting for a confirmation answers it (yes/no, any language)."""
        console = Console()
        if message is not None:
            out = run(lambda: with_assistant(lambda a: a.turn(message, thread_id=thread, user_id=user)))
            if as_json:
                print_json(out)
            else:
                _render(console, out)
            return

        async def repl(assistant) -> None:
            thread_id = thread
            console.print("[bold]MangaAssist[/bold] — ask in English or Japanese; empty line or Ctrl-D to quit.")
            while True:
                try:
                    text = console.input("[bold cyan]you>[/bold cyan] ")
                except (EOFError, KeyboardInterrupt):
                    break
                if not text.strip():
                    break
                try:
                    out = await assistant.turn(text, thread_id=thread_id, user_id=user)
                except ValueError as exc:
                    console.print(f"[red]error:[/red] {exc}")
                    continue
                thread_id = out["thread_id"]
                if as_json:
                    print_json(out)
                else:
                    _render(console, out)

        run(lambda: with_assistant(repl))
