"""Known-item catalog search evaluation: recall@1, recall@10, MRR@10 per query kind, latency, and two TF-IDF baselines."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.search_queries import DEFAULT_SEED, Query, Relevance, make_queries, split_of
from core.domain import CatalogItem

K = 10


def _rank(ranked: Sequence[int], relevant: frozenset[int], k: int = K) -> int | None:
    """1-based rank of the first relevant id within the top ``k``, or None."""
    for r, mal_id in enumerate(ranked[:k], start=1):
        if mal_id in relevant:
            return r
    return None


def _metrics(queries: Sequence[Query], ranked: Sequence[Sequence[int]]) -> dict:
    """recall@1, recall@10 and MRR@10 overall and per kind (a query counts when any relevant id is in the top k)."""
    by_kind: dict[str, list[int | None]] = defaultdict(list)
    ranks = []
    for q, r in zip(queries, ranked):
        rk = _rank(r, q.relevant)
        ranks.append(rk)
        by_kind[q.kind].append(rk)

    def agg(rs: list[int | None]) -> dict:
        n = len(rs)
        return {
            "n": n,
            "recall@1": sum(1 for r in rs if r == 1) / n if n else 0.0,
            "recall@10": sum(1 for r in rs if r is not None) / n if n else 0.0,
            "mrr@10": sum(1.0 / r for r in rs if r is not None) / n if n else 0.0,
        }

    return {"overall": agg(ranks), "per_kind": {k: agg(v) for k, v in by_kind.items()}}


class _TfidfBaseline:
    """A one-field TF-IDF baseline over one document per title (all title variants + authors), cosine ranking,
    raw query text (no normalisation beyond lowercasing, no volume parsing, no prior)."""

    def __init__(self, items: Sequence[CatalogItem], **vectorizer_kw):
        self.ids = np.array([it.mal_id for it in items])
        docs = [" ".join([it.title, it.title_en, it.title_ja, *it.synonyms, *it.authors]) for it in items]
        self.vec = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **vectorizer_kw)
        self.X = self.vec.fit_transform(docs).T.tocsr()

    def rank_many(self, texts: Sequence[str], k: int = K) -> list[list[int]]:
        out: list[list[int]] = []
        for b in range(0, len(texts), 256):
            s = (self.vec.transform(texts[b : b + 256]) @ self.X).toarray()
            top = np.argsort(-s, axis=1, kind="stable")[:, :k]
            for row, t in zip(s, top):
                out.append([int(self.ids[i]) for i in t if row[i] > 0])
        return out


def baselines(items: Sequence[CatalogItem]) -> dict[str, Callable[[Sequence[str]], list[list[int]]]]:
    """The two reference rankers: ``char_tfidf`` (char_wb 2-4-grams) and ``word_tfidf`` (word unigrams)."""
    char = _TfidfBaseline(items, analyzer="char_wb", ngram_range=(2, 4))
    word = _TfidfBaseline(items, analyzer="word")
    return {"char_tfidf": char.rank_many, "word_tfidf": word.rank_many}


def run_search_eval(index=None, sample: int | None = None, split: str = "test", seed: int = DEFAULT_SEED,
                    with_baselines: bool = True) -> dict:
    """Evaluate ``index`` (default: ``HybridIndex.build(load_catalog())``) on the known-item queries of ``split``.

    ``sample`` is the number of queries (default 3,000, spread evenly over kinds). Each query is run
    alone through ``index.search`` and timed with ``time.perf_counter`` (latency in ms).
    Returns a dict: ``split``, ``n_queries``, ``build_s`` (0 when an index was passed), ``hybrid``
    (``overall`` and ``per_kind`` dicts of recall@1, recall@10, mrr@10, n), ``volume_accuracy``
    (share of volume queries whose hits carry the requested volume), ``latency_ms`` (p50, p99,
    mean, and cpu_p50/cpu_p99 = thread CPU time, which other load on the machine does not inflate), ``search_many_qps``,
    ``baselines`` (same metric dicts for ``char_tfidf`` and
    ``word_tfidf``) when ``with_baselines``, ``sentence`` (``run_sentence_eval``), and ``loanword`` (``run_loanword_eval``) when the index is a
    HybridIndex. Raises ValueError on a bad split or sample.
    """
    from core.settings import get_settings
    from tools.backends.catalog import load_catalog
    from tools.backends.factory import shared_index

    catalog = load_catalog()
    build_s = 0.0
    if index is None:
        settings = get_settings()
        t0 = time.perf_counter()
        index = shared_index(catalog, settings.model_dir, settings.search_encoder)
        build_s = time.perf_counter() - t0
    queries = make_queries(catalog.items, split=split, sample=sample, seed=seed)
    if not queries:
        raise ValueError("no queries generated")

    ranked: list[list[int]] = []
    lat: list[float] = []
    cpu: list[float] = []
    vol_ok = vol_n = 0
    for q in queries:
        t0, c0 = time.perf_counter(), time.thread_time()
        hits = index.search(q.text, K)
        lat.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
        ranked.append([h.mal_id for h in hits])
        if q.volume is not None:
            vol_n += 1
            vol_ok += bool(hits) and all(h.volume == q.volume for h in hits)

    t0 = time.perf_counter()
    index.search_many([q.text for q in queries], K)
    batch_s = time.perf_counter() - t0

    lat_a = np.array(lat)
    summary = {
        "split": split,
        "n_queries": len(queries),
        "build_s": round(build_s, 3),
        "hybrid": _metrics(queries, ranked),
        "volume_accuracy": vol_ok / vol_n if vol_n else None,
        "latency_ms": {
            "p50": float(np.percentile(lat_a, 50)),
            "p99": float(np.percentile(lat_a, 99)),
            "mean": float(lat_a.mean()),
            # CPU time of the calling thread: robust to other processes sharing the cores
            "cpu_p50": float(np.percentile(cpu, 50)),
            "cpu_p99": float(np.percentile(cpu, 99)),
        },
        "search_many_qps": len(queries) / batch_s if batch_s > 0 else None,
    }
    if with_baselines:
        texts = [q.text for q in queries]
        summary["baselines"] = {name: _metrics(queries, fn(texts)) for name, fn in baselines(catalog.items).items()}
    summary["sentence"] = run_sentence_eval(index, split, sample, catalog.items)
    if hasattr(index, "weights"):  # a HybridIndex: katakana loanwords (phonetic, and e5 when loaded)
        summary["loanword"] = run_loanword_eval(index, split)
    return summary


def sentence_queries(items: Sequence[CatalogItem], split: str, sample: int | None = None) -> list[Query]:
    """The router's held-apart search requests of ``split`` that name exactly one catalog title ("do you have
    {title}?", "is {title} vol 3 in stock?", "{title}はありますか"; tools/backends/router_data.py), as a customer
    writes them (kind ``sentence``). Relevant: that title plus any title sharing its MAL name. Titles follow the
    router's split (7/1/2 by name), not ``split_of``: a few may be search-dev titles. ``sample`` keeps an evenly
    spaced subset of at most that many (deterministic). Dev has 845 such requests, test 1,142."""
    from tools.backends import router_data

    rel = Relevance(items)
    by_id = {it.mal_id: it for it in items}
    out = [Query(u.text, "sentence", u.mal_ids[0], rel.same_name(by_id[u.mal_ids[0]].title, u.mal_ids[0]))
           for u in router_data.build_dataset().split(split)
           if u.labels == ("search",) and len(u.mal_ids) == 1 and u.mal_ids[0] in by_id]
    if sample is not None and len(out) > sample:
        out = [out[i * len(out) // sample] for i in range(sample)]
    return out


def run_sentence_eval(index, split: str = "test", sample: int | None = None,
                      items: Sequence[CatalogItem] | None = None) -> dict:
    """recall@1/@10 and MRR@10 of ``sentence_queries`` through ``index.search_many``: ``cleaned`` searches what the
    Search agent searches (``clean_search_query`` strips "do you have", "in stock?", "はありますか"), ``raw`` the whole
    sentence (the agent's first "broaden" retry). The standard kinds are bare titles; this is the check that a
    change in title scoring does not cost full sentences (a coverage-weighted title score raised bare-title R@1
    but cost these dev R@1 0.962 → 0.946). ``items``: the catalog the index holds (default ``index.items``, which
    only the in-process index has). Returns {"n", "cleaned", "raw"} (metric dicts as ``_metrics`` gives)."""
    from tools.backends.models.text_rules import clean_search_query

    queries = sentence_queries(items if items is not None else index.items, split, sample)
    cleaned = index.search_many([clean_search_query(q.text) for q in queries], K)
    raw = index.search_many([q.text for q in queries], K)
    return {"n": len(queries),
            "cleaned": _metrics(queries, [[h.mal_id for h in hits] for hits in cleaned])["overall"],
            "raw": _metrics(queries, [[h.mal_id for h in hits] for hits in raw])["overall"]}


def loanword_queries(items: Sequence[CatalogItem], split: str) -> list[Query]:
    """Held-out-reading queries of ``split``: every title whose Japanese title is katakana only and whose MAL title
    is Latin script (ベルセルク / Berserk), queried by that katakana title (kind ``loanword``). Relevant: the title
    plus any other title with the same name. ``run_loanword_eval`` searches them in an index from which these
    katakana titles are removed, as the catalog lacks a katakana spelling for ONE PIECE, BLEACH or DEATH NOTE."""
    from tools.backends.search_index import is_katakana

    rel = Relevance(items)
    return [Query(it.title_ja, "loanword", it.mal_id, rel.same_name(it.title_ja, it.mal_id) | {it.mal_id})
            for it in items
            if split_of(it.mal_id) == split and it.title_ja and is_katakana(it.title_ja) and it.title.isascii()]


def loanword_requests(queries: Sequence[Query], split: str) -> list[tuple[str, Query]]:
    """Each loanword query inside a Japanese search request, cleaned as the Search agent cleans it: the router's
    held-apart Japanese search templates of ``split`` whose slots are {title} (and {n}), taken in turn
    ("{title}って完結してる？" → "デスノートって完結してる？" → ``clean_search_query``). Returns (cleaned text, query)."""
    from tools.backends import router_data
    from tools.backends.models.text_rules import clean_search_query

    templates = router_data.load_templates()
    tsplit = router_data.template_splits(templates)
    ja = [t for t in templates if t.lang == "ja" and t.label == "search" and t.kind == "single"
          and tsplit[t.template_id] == split and "title" in t.slots and t.slots <= {"title", "n"}]
    if not ja:
        return []
    return [(clean_search_query(ja[i % len(ja)].template.format(title=q.text, n=i % 20 + 1)), q)
            for i, q in enumerate(queries)]


def run_loanword_eval(index, split: str = "test") -> dict:
    """recall@1/@10 and MRR@10 of ``loanword_queries`` on copies of ``index`` (a HybridIndex) whose queried katakana
    titles are blanked: ``hybrid`` with both loanword matchers (the sentence-encoder ``LoanwordMatcher`` when
    ``index`` has one, and the ``PhoneticMatcher``), ``encoder_only`` (phonetic weight 0), ``phonetic_only`` (no
    LoanwordMatcher) and ``lexical`` (neither); ``in_request``: ``hybrid`` on ``loanword_requests`` (the titles
    inside Japanese requests, as the Search agent cleans them). Returns {"n", "hybrid", "in_request", "encoder_only",
    "phonetic_only", "lexical", "latency_ms": {"p50", "p99"} of ``hybrid``} (metric dicts as ``_metrics`` gives;
    ``encoder_only`` is absent without a LoanwordMatcher, ``in_request`` without such templates)."""
    from tools.backends.search_index import HybridIndex

    queries = loanword_queries(index.items, split)
    held = {q.source_id for q in queries}
    blanked = [dataclasses.replace(it, title_ja="") if it.mal_id in held else it for it in index.items]
    w = index.weights
    with_lw = HybridIndex(blanked, weights=w, loanwords=index.loanwords)
    variants = {"phonetic_only": HybridIndex(blanked, weights=dataclasses.replace(w, loanword=0.0)),
                "lexical": HybridIndex(blanked, weights=dataclasses.replace(w, loanword=0.0, phonetic=0.0))}
    if index.loanwords is not None:
        variants["encoder_only"] = HybridIndex(blanked, weights=dataclasses.replace(w, phonetic=0.0),
                                               loanwords=index.loanwords)
    lat = []
    ranked = []
    for q in queries:
        t0 = time.perf_counter()
        ranked.append([h.mal_id for h in with_lw.search(q.text, K)])
        lat.append((time.perf_counter() - t0) * 1000.0)
    out = {"n": len(queries), "hybrid": _metrics(queries, ranked)["overall"]}
    requests = loanword_requests(queries, split)
    if requests:
        hits = with_lw.search_many([text for text, _ in requests], K)
        out["in_request"] = {"n": len(requests), **_metrics([q for _, q in requests],
                                                            [[h.mal_id for h in hs] for hs in hits])["overall"]}
    for name, idx in variants.items():
        hits = idx.search_many([q.text for q in queries], K)
        out[name] = _metrics(queries, [[h.mal_id for h in hs] for hs in hits])["overall"]
    out["latency_ms"] = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))} if lat else {}
    return out


def _pair(m: dict | None) -> str:
    return "n/a" if not m else f"{m['recall@1']:.3f} / {m['recall@10']:.3f}"


def print_report(summary: dict) -> None:
    """Print a rich table (per kind and overall; hybrid vs baselines) then the summary as one JSON line."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    base = summary.get("baselines", {})
    table = Table(title=f"Catalog search, split={summary['split']}, {summary['n_queries']} queries (k={K})")
    table.add_column("kind")
    table.add_column("n", justify="right")
    for col in ("R@1", "R@10", "MRR@10"):
        table.add_column(f"hybrid {col}", justify="right")
    for name in base:
        short = name.split("_")[0]
        table.add_column(f"{short} R@1", justify="right")
        table.add_column(f"{short} R@10", justify="right")
    hyb = summary["hybrid"]
    rows = [(k, hyb["per_kind"][k]) for k in hyb["per_kind"]] + [("overall", hyb["overall"])]
    for kind, m in rows:
        cells = [kind, str(m["n"]), f"{m['recall@1']:.3f}", f"{m['recall@10']:.3f}", f"{m['mrr@10']:.3f}"]
        for _name, bm in base.items():
            b = bm["overall"] if kind == "overall" else bm["per_kind"].get(kind, {})
            cells += [f"{b.get('recall@1', 0):.3f}", f"{b.get('recall@10', 0):.3f}"]
        table.add_row(*cells, style="bold" if kind == "overall" else None)
    console.print(table)
    lat = summary["latency_ms"]
    vol = summary["volume_accuracy"]
    console.print(
        f"latency (single query): p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms "
        f"(CPU p50 {lat['cpu_p50']:.2f} ms, p99 {lat['cpu_p99']:.2f} ms); "
        f"search_many {summary['search_many_qps'] or 0:.0f} queries/s; "
        f"volume parsed correctly: {vol if vol is None else f'{vol:.3f}'}; build {summary['build_s']:.2f} s"
    )
    sent = summary.get("sentence")
    if sent and sent["n"]:
        c, r = sent["cleaned"], sent["raw"]
        console.print(
            f"sentence requests naming one title, as the Search agent cleans them (n={sent['n']}): "
            f"R@1 {c['recall@1']:.3f}, R@10 {c['recall@10']:.3f}, MRR@10 {c['mrr@10']:.3f} "
            f"(whole sentence: {r['recall@1']:.3f} / {r['recall@10']:.3f})")
    lw = summary.get("loanword")
    if lw:
        console.print(
            f"katakana loanword queries, katakana titles held out of the index (n={lw['n']}): "
            f"R@1 {lw['hybrid']['recall@1']:.3f}, R@10 {lw['hybrid']['recall@10']:.3f}, MRR@10 {lw['hybrid']['mrr@10']:.3f} "
            f"(R@1 / R@10 with only the sentence encoder: {_pair(lw.get('encoder_only'))}, only phonetic: "
            f"{_pair(lw.get('phonetic_only'))}, neither: {_pair(lw.get('lexical'))}); "
            f"latency p50 {lw['latency_ms']['p50']:.1f} ms, p99 {lw['latency_ms']['p99']:.1f} ms")
        if lw.get("in_request"):
            console.print(f"the same titles inside Japanese search requests, cleaned as the Search agent does "
                          f"(n={lw['in_request']['n']}): R@1 / R@10 {_pair(lw['in_request'])}")
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
