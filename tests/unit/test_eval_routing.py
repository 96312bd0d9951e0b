"""Routing evaluation: metric arithmetic on a hand-made case, a small real sample (what CI runs), and the CLI."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from bench.eval_routing import _figures, _prf, macro_f1_ci, run_routing_eval
from cli.classify_cmds import register
from core.ports import INTENTS


def test_per_label_figures_by_hand():
    gold = [("search",), ("search", "order"), ("faq",), ("out_of_scope",)]
    pred = [("search",), ("search",), ("order",), ("out_of_scope",)]
    per = _prf(gold, pred, ["search", "order", "faq", "out_of_scope"])
    assert per["search"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert per["order"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # one FN, one FP
    assert per["faq"]["support"] == 1 and per["faq"]["recall"] == 0.0
    f = _figures(gold, pred)
    assert f["labels"] == ["search", "order", "faq", "out_of_scope"]  # only labels with gold support
    assert f["macro_f1"] == pytest.approx(0.5) and f["exact_match"] == pytest.approx(0.5)
    assert f["multi_n"] == 1 and f["multi_exact_match"] == 0.0


def test_macro_f1_interval_by_hand():
    gold = [("search",), ("search",), ("faq",), ("faq",)] * 5
    perfect = macro_f1_ci(gold, gold, [str(i) for i in range(20)], [True] * 20)
    assert perfect == (pytest.approx(1.0), pytest.approx(1.0))
    # one "template" (cluster) wholly wrong: draws without it score higher, draws with it twice lower
    pred = [("faq",) if i < 4 else g for i, g in enumerate(gold)]
    clusters = ["t0"] * 4 + [f"t{i // 4}" for i in range(4, 20)]
    lo, hi = macro_f1_ci(gold, pred, clusters, [False] * 20, n_boot=2000, seed=3)
    point = _figures(gold, pred)["macro_f1"]
    assert lo < point < hi and hi == pytest.approx(1.0)
    assert macro_f1_ci(gold, pred, clusters, [False] * 20, seed=3) == macro_f1_ci(gold, pred, clusters, [False] * 20, seed=3)
    with pytest.raises(ValueError):
        macro_f1_ci(gold, pred[:3], clusters, [False] * 20)


@pytest.fixture(scope="module")
def summary() -> dict:
    return run_routing_eval(sample=400, split="dev", seed=1)


def test_small_sample_figures_are_consistent(summary):
    n = summary["n"]
    assert n == 400 and summary["split"] == "dev"
    per = summary["per_label"]
    assert list(per) == list(INTENTS)
    assert summary["macro_f1"] == pytest.approx(sum(v["f1"] for v in per.values()) / len(INTENTS))
    assert summary["out_of_scope_recall"] == per["out_of_scope"]["recall"]
    single = n - summary["multi_n"]
    assert sum(sum(row.values()) for row in summary["confusion"].values()) == single
    assert summary["real"]["n"] + summary["derived"]["n"] == n
    assert summary["en"]["n"] + summary["ja"]["n"] == n and summary["ja"]["n"] > 0
    # a router that works: far above chance on every subset (7 labels)
    for block in (summary, summary["real"], summary["derived"], summary["en"], summary["ja"]):
        assert 0.6 < block["macro_f1"] <= 1.0
    lo, hi = summary["macro_f1_ci95"]
    assert 0.0 < lo <= summary["macro_f1"] <= hi <= 1.0
    assert summary["targets_met"] == (summary["macro_f1"] >= 0.98 and summary["out_of_scope_recall"] >= 0.97)


def test_cli_prints_tables_and_a_json_line_and_refuses_a_bad_split():
    app, eval_app, bench_app = typer.Typer(), typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app, bench_app)
    result = CliRunner().invoke(app, ["eval", "routing", "--sample", "120", "--split", "dev"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["n"] == 120 and set(last["f1"]) == set(INTENTS) and "ja" in last
    bad = CliRunner().invoke(app, ["eval", "routing", "--split", "train"])
    assert bad.exit_code == 2
