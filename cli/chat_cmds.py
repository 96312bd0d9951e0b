"""`mangaassist chat`: one message (optionally as JSON) or an interactive chat on a thread."""

from __future__ import annotations

import asyncio
import re

import typer
from rich.console import Console

from cli.runtime import print_json, run, with_assistant

_EXIT = re.compile(r"^\s*(?:exit|quit|bye|goodbye|:q|exit\(\)|quit\(\)|終了|おわり|終わり|やめる|バイバイ)[\s.!。！]*$",
                   re.IGNORECASE)


def is_exit_command(text: str) -> bool:
    """True when a REPL line is only a word for leaving ("exit", "quit", "bye", "終了", "おわり"...), in any case and
    with trailing punctuation; a sentence that merely contains one ("quit my subscription") is a message."""
    return bool(_EXIT.match(text))


def _render(console: Console, out: dict) -> None:
    console.print(out["answer"], markup=False, highlight=False)
    agents = ",".join(out["agents"]) or "-"
    console.print(f"[dim]intents={','.join(out['intents'])} agents={agents} "
                  f"total={out['timings_ms'].get('total', 0):.0f} ms thread={out['thread_id']}[/dim]")


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the chat commands to the CLI (``app``; ``eval_app`` and ``bench_app`` are the sub-apps)."""
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
            console.print("[bold]MangaAssist[/bold] — ask in English or Japanese; "
                          "exit, quit, 終了, an empty line or Ctrl-D to leave.")
            while True:
                try:  # reading stdin blocks: off the event loop
                    text = await asyncio.to_thread(console.input, "[bold cyan]you>[/bold cyan] ")
                except (EOFError, KeyboardInterrupt):
                    break
                if not text.strip() or is_exit_command(text):
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
