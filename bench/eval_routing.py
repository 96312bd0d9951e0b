"""Routing quality of the local router on the held-out router split: macro-F1, per-label P/R, confusion, real vs derived."""

from __future__ import annotations

import json
import random
import time
from typing import Sequence

import numpy as np

from core.ports import INTENTS

SINGLE_N = 200
"""Messages routed one at a time for the single-message latency figures."""


def _prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]) -> dict:
    """Per-label binary precision/recall/F1/support (multi-label: each label judged on its own)."""
    out = {}
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred) if lab in g and lab in p)
        fp = sum(1 for g, p in zip(gold, pred) if lab not in g and lab in p)
        fn = sum(1 for g, p in zip(gold, pred) if lab in g and lab not in p)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[lab] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
    return out


def _figures(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Macro-F1 over the labels with gold support in this subset, exact-match accuracy, multi-intent exact match."""
    present = [lab for lab in INTENTS if any(lab in g for g in gold)]
    per = _prf(gold, pred, present)
    multi = [(g, p) for g, p in zip(gold, pred) if len(g) > 1]
    return {
        "n": len(gold),
        "macro_f1": sum(v["f1"] for v in per.values()) / len(per) if per else 0.0,
        "labels": present,
        "exact_match": sum(set(g) == set(p) for g, p in zip(gold, pred)) / len(gold) if gold else 0.0,
        "multi_n": len(multi),
        "multi_exact_match": sum(set(g) == set(p) for g, p in multi) / len(multi) if multi else None,
    }


def macro_f1_ci(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], clusters: Sequence[str],
                strata: Sequence[bool], n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % interval (2.5th, 97.5th percentile) of macro-F1 by a stratified cluster bootstrap (over the labels with
    gold support: all seven on a full split).

    Items sharing a ``clusters`` key (a derived template: every title filled into it reads the same way) are
    drawn together, with replacement, within their stratum (``strata``: real vs derived), ``n_boot`` times;
    the macro-F1 of each draw is computed from summed per-label TP/FP/FN. The test split holds ~10 templates
    per (label, language), so one hard template moves the figure: this interval says how far. Deterministic
    for a given ``seed``. Raises ValueError when the inputs differ in length or are empty.
    """
    n = len(gold)
    if not n or not (n == len(pred) == len(clusters) == len(strata)):
        raise ValueError("gold, pred, clusters and strata must be non-empty and of one length")
    g = np.array([[lab in x for lab in INTENTS] for x in gold])
    p = np.array([[lab in x for lab in INTENTS] for x in pred])
    keys = sorted(set(zip(strata, clusters)))
    index = {k: i for i, k in enumerate(keys)}
    cid = np.array([index[k] for k in zip(strata, clusters)])
    counts = np.zeros((3, len(keys), len(INTENTS)))
    for j, m in enumerate((g & p, ~g & p, g & ~p)):  # tp, fp, fn
        np.add.at(counts[j], cid, m.astype(float))
    rng = np.random.default_rng(seed)
    W = np.zeros((n_boot, len(keys)))
    for stratum in (False, True):
        cols = np.array([i for i, k in enumerate(keys) if k[0] == stratum])
        if len(cols):
            W[:, cols] = rng.multinomial(len(cols), np.full(len(cols), 1 / len(cols)), size=n_boot)
    tp, fp, fn = (W @ counts[j] for j in range(3))
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12)
    macro = f1[:, g.any(axis=0)].mean(axis=1)  # the labels with gold support, as _figures averages
    return float(np.percentile(macro, 2.5)), float(np.percentile(macro, 97.5))


def run_routing_eval(sample: int | None = None, split: str = "test", seed: int = 0) -> dict:
    """Evaluate ``LocalRouter`` (cached under ``settings.model_dir``, trained if absent) on a router split.

    ``split`` is "test" (held out: CLINC150 val + a Bitext slice + derived utterances from held-out
    templates and titles) or "dev" (used for threshold tuning). ``sample`` keeps a seeded random
    subset of N utterances. Returns a JSON-serialisable dict:
    ``macro_f1`` (per-label binary F1 averaged over all seven labels), ``per_label``
    {label: precision, recall, f1, support}, ``macro_f1_ci95`` (``macro_f1_ci``: derived items clustered by
    template, real ones each its own cluster), ``confusion`` (single-label items: gold label → predicted
    top label → count), ``out_of_scope_recall``, ``multi_exact_match`` (share of multi-intent items
    whose predicted label set equals the gold set), ``complex`` (P/R of the complex flag),
    ``real``/``derived`` (the same figures per origin; macro-F1 over labels present in that subset),
    ``en``/``ja`` (the same per message language, ``core.lang.detect_locale``: Japanese = any kana/kanji),
    ``load_s``/``route_ms_per_item`` (batched) and ``single_ms_p50``/``single_ms_p99`` (ms per message routed
    alone, over the first ``SINGLE_N`` items) timings, ``encoder`` (the sentence encoder's name or None) and
    ``targets_met``.
    Raises ValueError for an unknown split.
    """
    from core.lang import detect_locale
    from core.settings import get_settings
    from tools.backends.models.local_router import LocalRouter
    from tools.backends.router_data import build_dataset

    t0 = time.perf_counter()
    router = LocalRouter.from_settings(get_settings())
    load_s = time.perf_counter() - t0
    items = build_dataset().split(split)
    if sample is not None and sample < len(items):
        items = random.Random(seed).sample(items, sample)
    t1 = time.perf_counter()
    decisions = router.route_many([u.text for u in items])
    route_s = time.perf_counter() - t1
    single_ms = []
    for u in items[:SINGLE_N]:  # one message at a time, as the classify node routes them
        t2 = time.perf_counter()
        router.route(u.text)
        single_ms.append(1000 * (time.perf_counter() - t2))
    gold = [u.labels for u in items]
    pred = [d.intents for d in decisions]
    langs = [detect_locale(u.text) for u in items]

    per = _prf(gold, pred, INTENTS)
    confusion: dict[str, dict[str, int]] = {g: {p: 0 for p in INTENTS} for g in INTENTS}
    for g, p in zip(gold, pred):
        if len(g) == 1:
            confusion[g[0]][p[0]] += 1
    overall = _figures(gold, pred)
    overall["macro_f1"] = sum(v["f1"] for v in per.values()) / len(INTENTS)
    overall["macro_f1_ci95"] = macro_f1_ci(gold, pred, [u.origin if not u.real else u.text for u in items],
                                           [u.real for u in items])
    cgold = [u.complex for u in items]
    cpred = [d.complex for d in decisions]
    ctp = sum(a and b for a, b in zip(cgold, cpred))
    summary = {
        "split": split,
        "n": len(items),
        "thresholds": dict(zip(INTENTS, router.thresholds.round(2).tolist())),
        "clause_thresholds": dict(zip(INTENTS, router.clause_thresholds.round(2).tolist())),
        "clause_min": dict(zip(INTENTS, router.clause_min.tolist())),
        **overall,
        "out_of_scope_recall": per["out_of_scope"]["recall"],
        "per_label": per,
        "confusion": confusion,
        "complex": {
            "support": sum(cgold),
            "precision": ctp / sum(cpred) if sum(cpred) else 0.0,
            "recall": ctp / sum(cgold) if sum(cgold) else 0.0,
        },
        "real": _figures([g for g, u in zip(gold, items) if u.real], [p for p, u in zip(pred, items) if u.real]),
        "derived": _figures([g for g, u in zip(gold, items) if not u.real], [p for p, u in zip(pred, items) if not u.real]),
        **{lang: _figures([g for g, x in zip(gold, langs) if x == lang], [p for p, x in zip(pred, langs) if x == lang])
           for lang in ("en", "ja")},
        "load_s": load_s,
        "route_ms_per_item": 1000 * route_s / max(1, len(items)),
        "encoder": router.encoder.name if router.encoder is not None else None,
        "single_ms_p50": float(np.percentile(single_ms, 50)) if single_ms else None,
        "single_ms_p99": float(np.percentile(single_ms, 99)) if single_ms else None,
    }
    summary["targets_met"] = summary["macro_f1"] >= 0.98 and summary["out_of_scope_recall"] >= 0.97
    return summary


def print_report(summary: dict) -> None:
    """Print the summary as rich tables (per label, confusion, real vs derived) and one JSON line."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"Routing — {summary['split']} split, n={summary['n']} (per-label thresholds message/clause/clause-min)")
    for col in ("label", "precision", "recall", "F1", "support", "thresholds"):
        t.add_column(col, justify="right" if col != "label" else "left")
    for lab, v in summary["per_label"].items():
        t.add_row(lab, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]),
                  f"{summary['thresholds'][lab]:.2f}/{summary['clause_thresholds'][lab]:.2f}/{summary['clause_min'][lab]:g}")
    lo, hi = summary["macro_f1_ci95"]
    t.add_row("macro", "", "", f"{summary['macro_f1']:.4f}", str(summary["n"]), f"95% CI {lo:.3f}-{hi:.3f}", style="bold")
    con.print(t)

    c = Table(title="Confusion (single-label items): gold ↓ / predicted top →")
    c.add_column("gold")
    for lab in INTENTS:
        c.add_column(lab[:8], justify="right")
    for g, row in summary["confusion"].items():
        c.add_row(g, *(str(row[p]) for p in INTENTS))
    con.print(c)

    s = Table(title="By origin and by language")
    for col in ("subset", "n", "macro-F1", "exact match", "multi-intent n", "multi exact match"):
        s.add_column(col, justify="right" if col != "subset" else "left")
    for name in ("real", "derived", "en", "ja"):
        f = summary[name]
        if not f["n"]:
            continue
        mm = "-" if f["multi_exact_match"] is None else f"{f['multi_exact_match']:.4f}"
        s.add_row(name, str(f["n"]), f"{f['macro_f1']:.4f}", f"{f['exact_match']:.4f}", str(f["multi_n"]), mm)
    mm = "-" if summary["multi_exact_match"] is None else f"{summary['multi_exact_match']:.4f}"
    s.add_row("all", str(summary["n"]), f"{summary['macro_f1']:.4f}", f"{summary['exact_match']:.4f}",
              str(summary["multi_n"]), mm, style="bold")
    con.print(s)
    con.print(f"out_of_scope recall {summary['out_of_scope_recall']:.4f} · complex flag P/R "
              f"{summary['complex']['precision']:.3f}/{summary['complex']['recall']:.3f} "
              f"(support {summary['complex']['support']}) · load {summary['load_s']:.2f} s · "
              f"{summary['route_ms_per_item']:.3f} ms/item batched, {summary['single_ms_p50']:.1f}/"
              f"{summary['single_ms_p99']:.1f} ms p50/p99 alone (encoder {summary['encoder']}) · targets (macro-F1 ≥ 0.98, oos recall ≥ 0.97) "
              f"{'met' if summary['targets_met'] else 'NOT met'}")
    compact = {k: v for k, v in summary.items() if k not in ("per_label", "confusion")}
    compact["f1"] = {k: round(v["f1"], 4) for k, v in summary["per_label"].items()}
    print(json.dumps(compact, ensure_ascii=False, default=float))


if __name__ == "__main__":
    print_report(run_routing_eval())
