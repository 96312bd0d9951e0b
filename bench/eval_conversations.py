"""Multi-turn conversation evaluation on the embedded defaults: every turn of a scripted conversation is run
through the real supervisor graph and judged by its checks (intent, item, order, fact, lang, never, only,
interrupt).

Data: ``data/eval/conversations/{dev,test}.jsonl`` (one conversation a line; schema and provenance in that
folder's README), written by ``scripts/make_conversations.py`` from the catalog, the seeded orders and the
policies. The fact builders below (``*_fact``) are shared by the generator (facts stored in the files) and by
the runner (facts that depend on the run: order dates, the title an ordinal picked).

Each conversation runs on its own thread with a fresh seeded SQLite orders database (so a cancellation in one
conversation does not change another's orders), an in-memory checkpointer and store, and the shared read-only
backends (catalog, search index, recommender, local models, policy KB) built once per run.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "eval" / "conversations"
SPLITS = ("dev", "test", "test2")
CHECK_KINDS = ("intent", "item", "order", "fact", "lang", "never", "only", "interrupt")
"""Check kinds, in report order. ``intent``: the turn's intents are non-empty and all among the listed labels;
``item``: a mal_id (or any of a list; or ``{"ordinal": k}``, the k-th title of the last list shown; or
``{"ref": true}``, the title the last ordinal picked) is listed in the answer's items or is the focused item;
``order``: the order id is listed, focused or the interrupt's order; ``fact``: one of the regex alternatives
(case-insensitive) matches the answer, or a ``{"ref_field"|"order_field": ...}`` spec resolved at run time;
``lang``: the answer's language (``answer_lang``); ``never``: no listed string (case-insensitive substring) is
in the answer and no listed mal_id (int) is among the items; ``only``: every listed item's mal_id is in this
list (``[]``: no titles may be listed); ``interrupt``: the turn pauses for confirmation of this action
("cancel" | "return"), or ``false``: it does not."""
TARGETS = {"all": 0.90, "en": 0.85, "ja": 0.85, "followup": 0.90, "direct_fact": 0.95}
"""Issue targets on the test split: turns passing all checks, per language, follow-up turns, direct-answer facts."""

_GENRE_JA_PATH = Path(__file__).resolve().parent.parent / "data" / "intents" / "derived" / "genre_ja.csv"


# --------------------------------------------------------------------------------------------- fact builders
def _num(n: int) -> str:
    """Regex for the integer ``n`` not inside a longer number; thousands separator optional (1,200 / 1200)."""
    s = f"{n:,}".replace(",", ",?")
    return rf"(?<![\d,]){s}(?![\d])"


def genre_ja() -> dict[str, str]:
    """English genre name → Japanese name (data/intents/derived/genre_ja.csv), read-only."""
    with _GENRE_JA_PATH.open(encoding="utf-8") as f:
        return {r["genre"]: r["genre_ja"] for r in csv.DictReader(f)}


def author_fact(item: Any) -> list[str]:
    """Alternatives naming one of the work's authors (romanised or Japanese). Raises ValueError if none known."""
    names = [*item.authors, *item.authors_ja]
    if not names:
        raise ValueError(f"mal_id {item.mal_id} has no author")
    return [re.escape(n) for n in names]


def volumes_fact(item: Any) -> list[str]:
    """The volume count as a number. Raises ValueError when the catalog has no count."""
    if not item.num_volumes:
        raise ValueError(f"mal_id {item.mal_id} has no volume count")
    return [_num(item.num_volumes)]


def status_fact(item: Any) -> list[str]:
    """Finished → "finished/complete/完結"; publishing or on hiatus → "still publishing/ongoing/連載中/休載"."""
    if item.status == "Finished":
        return [r"finished", r"complete[d]?\b", r"(?<!未)完結", r"ended"]
    if item.status == "On Hiatus":
        return [r"hiatus", r"休載", r"not finished", r"(?<!未)未完結"]
    return [r"still (?:being )?publish", r"ongoing", r"not (?:yet )?finished", r"連載中", r"未完結",
            r"still running", r"publishing"]


def price_fact(item: Any) -> list[str]:
    """The demo price per volume in yen."""
    return [_num(item.price_jpy)]


def stock_fact(item: Any) -> list[str]:
    """In stock → "in stock/在庫あり"; out of stock → "out of stock/在庫切れ"."""
    if item.stock > 0:
        return [r"(?<!not )(?<!out of )in stock", r"available", r"在庫あり", r"在庫があります", r"在庫がございます"]
    return [r"out of stock", r"not in stock", r"sold out", r"unavailable", r"在庫切れ", r"在庫なし", r"在庫がありません",
            r"在庫はありません", r"品切れ"]


def title_en_fact(item: Any) -> list[str]:
    """The English title. Raises ValueError when the record has none."""
    if not item.title_en:
        raise ValueError(f"mal_id {item.mal_id} has no English title")
    return [re.escape(item.title_en)]


def title_ja_fact(item: Any) -> list[str]:
    """The Japanese title. Raises ValueError when the record has none."""
    if not item.title_ja:
        raise ValueError(f"mal_id {item.mal_id} has no Japanese title")
    return [re.escape(item.title_ja)]


_STOP = {"The", "This", "That", "When", "After", "With", "From", "They", "There", "Their", "However", "While",
         "Although", "Source", "Written", "Included", "Japan", "Japanese", "What", "Meanwhile", "Since", "Now",
         "Even", "Some", "Many", "Then", "Will", "His", "Her", "One", "But", "And", "For", "Yet", "Once", "Each"}


def about_fact(item: Any) -> list[str]:
    """Up to three distinctive words of the synopsis (capitalised, not sentence-initial, not in the title):
    an answer about the work that draws on its synopsis names at least one. Raises ValueError when none."""
    title_words = {w.lower() for t in (item.title, item.title_en) for w in re.findall(r"\w+", t or "")}
    words: list[str] = []
    for m in re.finditer(r"(?<=[a-z,;] )([A-Z][a-z]{3,})\b", item.synopsis or ""):
        w = m.group(1)
        if w not in _STOP and w.lower() not in title_words and w not in words:
            words.append(w)
    if not words:
        raise ValueError(f"mal_id {item.mal_id} has no distinctive synopsis word")
    return [rf"\b{re.escape(w)}\b" for w in words[:3]]


def genres_fact(item: Any) -> list[str]:
    """One of the work's genres, in English or Japanese. Raises ValueError when it has none."""
    if not item.genres:
        raise ValueError(f"mal_id {item.mal_id} has no genres")
    ja = genre_ja()
    out = [re.escape(g) for g in item.genres]
    out += [re.escape(ja[g]) for g in item.genres if g in ja]
    return out


ITEM_FACTS = {"author": author_fact, "volumes": volumes_fact, "status": status_fact, "price": price_fact,
              "stock": stock_fact, "title_en": title_en_fact, "title_ja": title_ja_fact, "about": about_fact,
              "genres": genres_fact}
"""Catalog field name (as used in ``fact_from``: ``catalog:<mal_id>:<field>``) → fact builder."""


def date_alternatives(iso: str) -> list[str]:
    """A date as ISO, slashes, "December 4", "Dec 4", "4 December" and "12月4日"."""
    d = date.fromisoformat(iso[:10])
    month = d.strftime("%B")
    return [re.escape(d.isoformat()), re.escape(d.strftime("%Y/%m/%d")), rf"{month} {d.day}\b",
            rf"{month[:3]}\.? {d.day}\b", rf"\b{d.day} {month}", rf"{d.month}月{d.day}日"]


def arrival_fact(order: Any) -> list[str]:
    """When the order arrives: shipped → its estimated delivery date; delivered → its delivery date;
    processing → "not shipped yet"; cancelled → "cancelled"."""
    if order.status == "shipped":
        return date_alternatives(order.estimated_delivery)
    if order.status == "delivered":
        return date_alternatives(order.delivered_at) + [r"delivered", r"配達済み", r"お届け済み"]
    if order.status == "processing":
        return [r"processing", r"not (?:yet )?(?:been )?shipped", r"hasn't shipped", r"before it ships",
                r"準備中", r"発送前", r"未発送", r"まだ発送"]
    return [r"cancel", r"キャンセル"]


def tracking_fact(order: Any) -> list[str]:
    """The tracking number; an order without one (processing/cancelled) → "not shipped yet"/"no tracking"."""
    if order.tracking_number:
        return [re.escape(order.tracking_number)]
    return [r"not (?:yet )?(?:been )?shipped", r"no tracking", r"準備中", r"発送前", r"未発送", r"cancel", r"キャンセル",
            r"processing"]


def can_cancel_fact(order: Any) -> list[str]:
    """Processing → it can be cancelled; otherwise → it cannot (shipped/delivered/already cancelled)."""
    if order.status == "processing":
        return [r"(?<!not )(?<!n't )(?:can|could) be cancell?ed", r"(?<!not )you can cancel", r"キャンセルできます",
                r"キャンセル可能", r"キャンセルいただけます"]
    if order.status == "cancelled":
        return [r"already cancell?ed", r"キャンセル済み", r"キャンセルされています", r"is cancell?ed"]
    return [r"can(?:no|')t be cancell?ed", r"can no longer be cancell?ed", r"cannot cancel", r"can't cancel",
            r"no longer", r"キャンセルできません", r"キャンセルはできません", r"キャンセルいただけません"]


def can_return_fact(order: Any, returnable: bool) -> list[str]:
    """``returnable`` (the repository's rule: delivered within 30 days) → it can be returned; else → it cannot."""
    if returnable:
        return [r"(?<!not )(?<!n't )can be returned", r"(?<!not )you can return", r"返品できます", r"返品可能",
                r"返品いただけます", r"返品を承"]
    return [r"can(?:no|')t be returned", r"no longer (?:be )?return", r"not (?:be )?returnable", r"cannot return",
            r"30[- ]day", r"返品できません", r"返品はできません", r"返品いただけません", r"30日"]


def cancelled_done_fact() -> list[str]:
    """The order has just been cancelled."""
    return [r"(?:has been|is now|was|been) cancell?ed", r"cancell?ed\b", r"キャンセルしました", r"キャンセルいたしました",
            r"キャンセル済み", r"キャンセルされました", r"キャンセルが完了"]


def kept_fact() -> list[str]:
    """The customer declined: the order is unchanged."""
    return [r"unchanged", r"not cancell?ed", r"won't cancel", r"will not cancel", r"left as is", r"keep", r"still",
            r"そのまま", r"キャンセルしませんでした", r"変更はありません", r"取り消し", r"中止", r"キャンセルは行いません"]


# ------------------------------------------------------------------------------------------------ language
_HIRA = re.compile(r"[\u3041-\u309f]")
_KANA_OR_KANJI = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")
_QUOTED = re.compile(r"[（(][^（）()]*[）)]|『[^』]*』|「[^」]*」|【[^】]*】")


def answer_lang(answer: str, names: Iterable[str] = ()) -> str:
    """The language an answer is written in: "ja" or "en".

    Titles and names are not language evidence (an English answer quotes 『ベルセルク』 and "Zangekikan
    (惨劇館)"), so ``names`` (titles and authors of the works shown) and bracketed segments are removed first.
    "ja" when at least two hiragana remain (Japanese sentences need particles and inflections; titles and
    names rarely leave two), or at least half of the remaining letters are kana/kanji; else "en".
    """
    text = answer or ""
    for n in sorted({n for n in names if n}, key=len, reverse=True):
        text = text.replace(n, " ")
    text = _QUOTED.sub(" ", text)
    if len(_HIRA.findall(text)) >= 2:
        return "ja"
    cjk = len(_KANA_OR_KANJI.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "ja" if cjk and cjk >= latin else "en"


# ------------------------------------------------------------------------------------------------ data
def load_split(split: str, data_dir: Path = DATA_DIR) -> list[dict]:
    """The conversations of a split (list of dicts, file order). Raises ValueError for an unknown split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    with (data_dir / f"{split}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _item_names(catalog: Any, mal_ids: Iterable[int]) -> list[str]:
    names: list[str] = []
    for mid in mal_ids:
        it = catalog.get(int(mid))
        if it is not None:
            names += [it.title, it.title_en, it.title_ja, *it.synonyms, *it.authors, *it.authors_ja]
    return names


def _match_any(patterns: Sequence[str], text: str) -> bool:
    return any(re.search(p, text, flags=re.IGNORECASE) for p in patterns)


# ------------------------------------------------------------------------------------------------ checks
class _Conv:
    """Per-conversation run state: the last list of titles shown and the title the last ordinal picked."""

    def __init__(self) -> None:
        self.last_list: list[int] = []
        self.referent: int | None = None


async def _judge(turn: dict, out: dict, focus: dict, conv: _Conv, deps: Any, user_id: str) -> dict[str, dict]:
    """Judge one turn's checks → {kind: {"ok": bool, "expected": ..., "got": ...}}."""
    checks = turn.get("checks", {})
    answer = out.get("answer") or ""
    items = [int(x["mal_id"]) for x in out.get("items") or [] if x.get("mal_id") is not None]
    focus_item = (focus.get("item") or {}).get("mal_id")
    listed_or_focused = set(items) | ({int(focus_item)} if focus_item is not None else set())
    res: dict[str, dict] = {}

    if "intent" in checks:
        got = list(out.get("intents") or [])
        res["intent"] = {"ok": bool(got) and set(got) <= set(checks["intent"]), "expected": checks["intent"], "got": got}
    if "item" in checks:
        spec = checks["item"]
        if isinstance(spec, dict) and "ordinal" in spec:
            k = int(spec["ordinal"])
            want = [conv.last_list[k - 1]] if len(conv.last_list) >= k else []
            conv.referent = want[0] if want else None
        elif isinstance(spec, dict) and spec.get("ref"):
            want = [conv.referent] if conv.referent is not None else []
        else:
            want = [int(x) for x in (spec if isinstance(spec, list) else [spec])]
        res["item"] = {"ok": bool(want) and any(w in listed_or_focused for w in want), "expected": want,
                       "got": sorted(listed_or_focused)}
    if "order" in checks:
        oid = checks["order"]
        got_orders = {o.get("order_id") for o in out.get("orders") or []}
        got_orders |= {focus.get("order_id"), (out.get("interrupt") or {}).get("order_id")}
        got_orders.discard(None)
        res["order"] = {"ok": oid in got_orders, "expected": oid, "got": sorted(got_orders)}
    if "fact" in checks:
        spec = checks["fact"]
        patterns: list[str] = []
        if isinstance(spec, list):
            patterns = spec
        elif "ref_field" in spec:
            it = deps.catalog.get(conv.referent) if conv.referent is not None else None
            patterns = ITEM_FACTS[spec["ref_field"]](it) if it is not None else []
        elif "order_field" in spec:
            order = await deps.orders.get_order(user_id, spec["order"])
            field = spec["order_field"]
            if field == "arrival":
                patterns = arrival_fact(order)
            elif field == "tracking":
                patterns = tracking_fact(order)
            elif field == "can_cancel":
                patterns = can_cancel_fact(order)
            elif field == "can_return":
                try:
                    deps.orders.check_action(order, "return")
                    ok = True
                except Exception:  # the repository's OrderError: not returnable
                    ok = False
                patterns = can_return_fact(order, ok)
            else:
                raise ValueError(f"unknown order_field {field!r}")
        res["fact"] = {"ok": bool(patterns) and _match_any(patterns, answer), "expected": patterns[:6], "got": None}
    if "lang" in checks:
        names = _item_names(deps.catalog, items + ([focus_item] if focus_item else []))
        for o in out.get("orders") or []:
            names += [i.get("title", "") for i in o.get("items") or []]
        got = answer_lang(answer, names)
        res["lang"] = {"ok": got == checks["lang"], "expected": checks["lang"], "got": got}
    if "never" in checks:
        bad = [x for x in checks["never"] if (isinstance(x, int) and x in items)
               or (isinstance(x, str) and x.lower() in answer.lower())]
        res["never"] = {"ok": not bad, "expected": checks["never"], "got": bad}
    if "only" in checks:
        allowed = set(checks["only"])
        extra = [m for m in items if m not in allowed]
        res["only"] = {"ok": not extra, "expected": f"{len(allowed)} allowed", "got": extra}
    if "interrupt" in checks:
        want = checks["interrupt"]
        intr = out.get("interrupt")
        got = intr.get("action") if intr else False
        res["interrupt"] = {"ok": got == want, "expected": want, "got": got}
    if len(items) >= 2:
        conv.last_list = items
    return res


# ------------------------------------------------------------------------------------------------ runner
async def _shared_backends(settings: Any) -> dict:
    from tools.backends.catalog import load_catalog
    from tools.backends.entities import shared_linker
    from tools.backends.factory import build_models, shared_index, shared_recommender
    from tools.backends.policies import MarkdownPolicyKB

    catalog = load_catalog()
    return {"catalog": catalog, "index": await asyncio.to_thread(shared_index, catalog),
            "linker": await asyncio.to_thread(shared_linker, catalog),
            "recommender": await asyncio.to_thread(shared_recommender, catalog, settings.model_dir),
            "models": await asyncio.to_thread(build_models, settings),
            "policies": MarkdownPolicyKB.load(settings.shipped_data_dir / "policies")}


async def run_conversation(conv: dict, shared: dict, settings: Any, workdir: Path) -> list[dict]:
    """Run one conversation on a fresh seeded SQLite orders database under ``workdir`` and judge its turns.

    Returns one record per turn: {conv_id, turn (1-based), text, lang, followup, direct, checks: {kind: {ok,
    expected, got}}, ok (all checks passed), answer, intents, items (mal_ids), focus_item, ms}.
    """
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    from core.deps import Deps
    from graphs.app import Assistant
    from graphs.supervisor import build_supervisor
    from tools.backends.cache import InProcessCache
    from tools.backends.seed import open_orders_repository

    s = settings.model_copy(update={"data_dir": workdir})
    orders = await open_orders_repository(s)
    try:
        deps = Deps(settings=s, catalog=shared["catalog"], index=shared["index"], recommender=shared["recommender"],
                    orders=orders, policies=shared["policies"], cache=InProcessCache(), models=shared["models"],
                    linker=shared["linker"])
        assistant = Assistant(build_supervisor(deps).compile(checkpointer=InMemorySaver(), store=InMemoryStore()),
                              deps, None)
        user_id, thread_id = conv["user_id"], f"eval-{conv['id']}"
        state = _Conv()
        records = []
        for i, turn in enumerate(conv["turns"], 1):
            t0 = time.perf_counter()
            out = await assistant.turn(turn["text"], thread_id=thread_id, user_id=user_id)
            ms = 1000 * (time.perf_counter() - t0)
            snap = await assistant.graph.aget_state(assistant.config(thread_id, user_id))
            focus = dict((snap.values or {}).get("focus") or {})
            checks = await _judge(turn, out, focus, state, deps, user_id)
            records.append({
                "conv_id": conv["id"], "turn": i, "text": turn["text"], "lang": conv["lang"],
                "followup": bool(turn.get("followup")), "direct": bool(turn.get("direct")),
                "checks": checks, "ok": all(c["ok"] for c in checks.values()),
                "answer": out.get("answer") or "", "intents": out.get("intents") or [],
                "items": [x.get("mal_id") for x in out.get("items") or []],
                "focus_item": (focus.get("item") or {}).get("mal_id"), "ms": round(ms, 1),
            })
        return records
    finally:
        await orders.close()


def _rate(flags: Sequence[bool]) -> dict:
    n = len(flags)
    p = sum(flags)
    return {"n": n, "passed": p, "rate": round(p / n, 4) if n else None}


def summarize(records: Sequence[dict], split: str, n_conversations: int, show_failures: bool) -> dict:
    """Figures over judged turn records (``run_conversation``): ``all`` (turns passing all their checks),
    ``by_kind`` {kind: {n, passed, rate}} (turns carrying that check), ``by_lang`` {en|ja: all-checks rate},
    ``by_lang_kind`` {en|ja: {kind: rate}}, ``followup`` (turns with no entity of their own, all checks),
    ``direct`` (direct-answer turns, all checks), ``direct_fact`` (direct-answer turns' fact check),
    ``conversations`` (conversations whose every turn passed), ``targets_met`` (``TARGETS``) and ``failures``
    (failing turn records, only when ``show_failures``)."""
    by_kind = {k: _rate([r["checks"][k]["ok"] for r in records if k in r["checks"]]) for k in CHECK_KINDS}
    by_lang = {lang: _rate([r["ok"] for r in records if r["lang"] == lang]) for lang in ("en", "ja")}
    by_lang_kind = {lang: {k: _rate([r["checks"][k]["ok"] for r in records if r["lang"] == lang and k in r["checks"]])
                           for k in CHECK_KINDS} for lang in ("en", "ja")}
    convs: dict[str, bool] = {}
    for r in records:
        convs[r["conv_id"]] = convs.get(r["conv_id"], True) and r["ok"]
    summary = {
        "split": split,
        "n_conversations": n_conversations,
        "n_turns": len(records),
        "all": _rate([r["ok"] for r in records]),
        "by_kind": by_kind,
        "by_lang": by_lang,
        "by_lang_kind": by_lang_kind,
        "followup": _rate([r["ok"] for r in records if r["followup"]]),
        "direct": _rate([r["ok"] for r in records if r["direct"]]),
        "direct_fact": _rate([r["checks"]["fact"]["ok"] for r in records if r["direct"] and "fact" in r["checks"]]),
        "conversations": _rate(list(convs.values())),
        "ms_per_turn_p50": sorted(r["ms"] for r in records)[len(records) // 2] if records else None,
    }

    def met(key: str, fig: dict) -> bool:
        return fig["rate"] is not None and fig["rate"] >= TARGETS[key]

    summary["targets_met"] = (met("all", summary["all"]) and met("en", by_lang["en"]) and met("ja", by_lang["ja"])
                              and met("followup", summary["followup"]) and met("direct_fact", summary["direct_fact"]))
    summary["failures"] = [r for r in records if not r["ok"]] if show_failures else []
    return summary


async def run_conversations_eval_async(split: str = "dev", sample: int | None = None, seed: int = 0,
                                       conversations: Sequence[dict] | None = None,
                                       settings: Any | None = None) -> dict:
    """Run a split (or a seeded sample of N of its conversations, or the given ``conversations``) and
    summarise (``summarize``). Failing turns are listed for the dev split only. Raises ValueError for an
    unknown split or a sample < 1."""
    from core.settings import Settings, get_settings

    convs = list(conversations) if conversations is not None else load_split(split)
    if sample is not None:
        if sample < 1:
            raise ValueError("sample must be >= 1")
        if sample < len(convs):
            convs = random.Random(seed).sample(convs, sample)
    base = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="ma-eval-conv-") as tmp:
        root = Path(tmp)
        s = Settings(**{**base.model_dump(), "data_dir": root, "database_url": None, "redis_url": None})
        shared = await _shared_backends(s)
        records: list[dict] = []
        for n, conv in enumerate(convs):
            work = root / f"c{n}"
            work.mkdir()
            records += await run_conversation(conv, shared, s, work)
    return summarize(records, split, len(convs), show_failures=split == "dev")


def run_conversations_eval(split: str = "dev", sample: int | None = None, seed: int = 0,
                           conversations: Sequence[dict] | None = None) -> dict:
    """Synchronous wrapper of ``run_conversations_eval_async`` (for the CLI)."""
    return asyncio.run(run_conversations_eval_async(split, sample, seed, conversations))


def _pct(fig: dict) -> str:
    return "-" if fig["rate"] is None else f"{fig['rate']:.3f} ({fig['passed']}/{fig['n']})"


def print_report(summary: dict, console: Any | None = None) -> None:
    """Print the figures as rich tables, then the failing turns (dev only), then one JSON line (no failures)."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title=f"Conversations — {summary['split']} split, {summary['n_conversations']} conversations, "
                    f"{summary['n_turns']} turns")
    for col in ("check", "all", "en", "ja"):
        t.add_column(col, justify="left" if col == "check" else "right")
    for k in CHECK_KINDS:
        if summary["by_kind"][k]["n"]:
            t.add_row(k, _pct(summary["by_kind"][k]), _pct(summary["by_lang_kind"]["en"][k]),
                      _pct(summary["by_lang_kind"]["ja"][k]))
    t.add_row("turns passing all checks", _pct(summary["all"]), _pct(summary["by_lang"]["en"]),
              _pct(summary["by_lang"]["ja"]), style="bold")
    con.print(t)
    con.print(f"follow-up turns (no entity of their own) {_pct(summary['followup'])} · direct-answer turns "
              f"{_pct(summary['direct'])}, their fact {_pct(summary['direct_fact'])} · whole conversations "
              f"{_pct(summary['conversations'])} · p50 {summary['ms_per_turn_p50']} ms a turn · targets "
              f"{'met' if summary['targets_met'] else 'NOT met'}")
    for r in summary["failures"]:
        bad = {k: {"expected": v["expected"], "got": v["got"]} for k, v in r["checks"].items() if not v["ok"]}
        con.print(f"[red]FAIL[/red] {r['conv_id']}#{r['turn']} [{','.join(r['intents'])}] {r['text']!r}", markup=True,
                  highlight=False)
        con.print(f"    failed: {json.dumps(bad, ensure_ascii=False)}", highlight=False, markup=False)
        con.print(f"    answer: {r['answer'][:240]!r}", highlight=False, markup=False)
    compact = {k: v for k, v in summary.items() if k not in ("failures", "by_lang_kind")}
    print(json.dumps(compact, ensure_ascii=False))


if __name__ == "__main__":
    print_report(run_conversations_eval())
