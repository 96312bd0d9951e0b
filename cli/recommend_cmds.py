"""CLI commands of the recommend family: ``mangaassist recommend`` (JSON lines on stdin) and ``mangaassist eval recommend``."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer


class RequestError(ValueError):
    """A malformed request line (the message says what is wrong)."""


def parse_request(line: str) -> tuple[list[tuple[int, float]], str]:
    """Validate one stdin line ``{"history": [{"mal_id": int, "score": int}], "text": str}``.

    ``history`` and ``text`` are optional (default: empty). ``score`` is a number from 1 to 10.
    Returns ``(history pairs, text)``; raises RequestError with a precise message otherwise.
    """
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RequestError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise RequestError("expected a JSON object")
    history = obj.get("history", [])
    text = obj.get("text", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise RequestError('"text" must be a string')
    if not isinstance(history, list):
        raise RequestError('"history" must be a list of {"mal_id": int, "score": int}')
    pairs: list[tuple[int, float]] = []
    for n, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise RequestError(f"history[{n}] must be an object")
        mal_id, score = entry.get("mal_id"), entry.get("score")
        if isinstance(mal_id, bool) or not isinstance(mal_id, int):
            raise RequestError(f"history[{n}].mal_id must be an integer")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 10:
            raise RequestError(f"history[{n}].score must be a number from 1 to 10")
        pairs.append((mal_id, float(score)))
    return pairs, text


def _positive(value: int) -> int:
    if value < 1:
        raise typer.BadParameter("must be >= 1")
    return value


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``recommend`` to ``app`` and ``recommend`` to ``eval_app`` (``bench_app`` is unused by this family)."""

    @app.command("recommend")
    def recommend_cmd(
        k: int = typer.Option(10, "--k", callback=_positive, help="Recommendations per request line (>= 1)."),
        as_json: bool = typer.Option(False, "--json", help='One output line per input line: {"items": [{mal_id, title, score}]}.'),
        explain: bool = typer.Option(False, "--explain", help="Also give reason, reason_ja and because_of per item."),
    ) -> None:
        """Recommend titles for each stdin line {"history": [{"mal_id": int, "score": int}], "text": str}.

        The model is fitted once (~3 s), then each line costs a few ms, so thousands of lines take seconds.
        History titles are never returned. Blank lines are skipped. A malformed line stops the run: its
        number and the problem go to stderr and the exit code is 2 (lines before it have been answered).
        """
        from tools.backends.catalog import load_catalog
        from tools.backends.recommender import HybridRecommender

        catalog = load_catalog()
        model = HybridRecommender.build(catalog)
        for lineno, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                history, text = parse_request(line)
            except RequestError as exc:
                sys.stdout.flush()
                sys.stderr.write(f"mangaassist recommend: line {lineno}: {exc}\n")
                raise typer.Exit(2) from None
            recs = model.recommend(history, liked_text=text, k=k)
            items = []
            for rec in recs:
                it = catalog.get(rec.mal_id)
                row: dict[str, Any] = {"mal_id": rec.mal_id, "title": it.title if it else "", "score": round(rec.score, 4)}
                if explain:
                    row.update(reason=rec.reason, reason_ja=model.reason_ja(rec, text), because_of=list(rec.because_of))
                items.append(row)
            if as_json:
                sys.stdout.write(json.dumps({"items": items}, ensure_ascii=False) + "\n")
            else:
                _print_table(lineno, items, recs)
        sys.stdout.flush()

    @eval_app.command("recommend")
    def eval_recommend_cmd(
        sample: int = typer.Option(None, "--sample", help="Number of users (default: every eligible user of the split)."),
        split: str = typer.Option("test", "--split", help="'test' (held apart, reported) or 'dev' (tuning)."),
        tune: bool = typer.Option(False, "--tune", help="Grid-search the fusion weights on the dev split instead."),
    ) -> None:
        """Leave-one-out recommender evaluation: hit-rate@10, NDCG@10, coverage, ablation, popularity baseline."""
        if sample is not None and sample < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--sample")
        if split not in ("test", "dev"):
            raise typer.BadParameter("must be 'test' or 'dev'", param_hint="--split")
        from bench.eval_recommend import print_report, run_recommend_eval, tune_weights

        if tune:
            result = tune_weights(sample=sample)
            print(json.dumps({"split": "dev", "n_users": result["n_users"], "best": result["best"]}))
            return
        print_report(run_recommend_eval(sample=sample, split=split))


def _print_table(lineno: int, items: list[dict], recs) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recommendations for line {lineno}")
    for col in ("#", "mal_id", "title", "score", "reason"):
        table.add_column(col)
    for r, (row, rec) in enumerate(zip(items, recs), start=1):
        table.add_row(str(r), str(row["mal_id"]), row["title"], f"{row['score']:.3f}", rec.reason)
    Console().print(table)
