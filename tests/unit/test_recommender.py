"""Unit tests of the hybrid recommender, its liked-text parser, the leave-one-out eval and the recommend CLI."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from bench.eval_recommend import bootstrap_ratio_interval, loo_cases, run_recommend_eval
from cli.recommend_cmds import RequestError, parse_request, register
from tools.backends.recommender import (
    LIKED_SCORE,
    FusionWeights,
    HybridRecommender,
    Rating,
    fit_ease,
    item_tags,
    load_ratings,
    parse_liked_text,
    start_year,
)

BERSERK = 2
ONE_PIECE = 13


@pytest.fixture(scope="module")
def ratings():
    return load_ratings()


@pytest.fixture(scope="module")
def model(catalog, ratings):
    return HybridRecommender.build(catalog, ratings=ratings)


def test_never_returns_history_or_excluded(model, catalog):
    popular = [it.mal_id for it in catalog.items[:40]]
    history = [(m, 9) for m in popular[:20]]
    exclude = popular[20:40]
    for text in ("", "action", "ホラー"):
        recs = model.recommend(history, liked_text=text, k=50, exclude=exclude)
        ids = [r.mal_id for r in recs]
        assert len(ids) == 50 and len(set(ids)) == 50
        assert not set(ids) & set(popular)


def test_empty_request_is_catalog_popularity(model, catalog):
    recs = model.recommend(k=5)
    assert [r.mal_id for r in recs] == [it.mal_id for it in sorted(catalog.items, key=lambda i: -i.members)[:5]]
    assert all(r.reason.startswith("Popular with readers of") for r in recs)


def test_reasons_name_the_liked_title(model, catalog):
    recs = model.recommend([(BERSERK, 10)], k=10)
    assert recs and all(r.because_of == (BERSERK,) for r in recs[:3])
    for r in recs:
        if r.because_of == (BERSERK,):
            assert "Berserk" in r.reason
            assert "ベルセルク" in model.reason_ja(r)
            shared = set(item_tags(catalog.get(r.mal_id))) & set(item_tags(catalog.get(BERSERK)))
            if shared:
                assert any(t in r.reason for t in shared)


def test_parse_liked_text_bilingual():
    assert parse_liked_text("ホラーとミステリーが好き") == (("Horror", "Mystery"), ())
    assert parse_liked_text("魔法少女もの") == (("Mahou Shoujo",), ())
    assert parse_liked_text("dark fantasy with great art")[0] == ("Fantasy", "Horror")
    assert parse_liked_text("恋愛は苦手、少年漫画が好き") == (("Shounen",), ("Romance",))
    assert parse_liked_text("no romance please, I want sports") == (("Sports",), ("Romance",))
    assert parse_liked_text("Shonen battle manga") == (("Shounen", "Action"), ())
    assert parse_liked_text("") == ((), ())


def test_japanese_text_picks_matching_genre(model, catalog):
    recs = model.recommend(liked_text="ホラーが読みたい", k=10)
    assert len(recs) == 10
    assert all("Horror" in item_tags(catalog.get(r.mal_id)) for r in recs)
    assert all("ホラー" in model.reason_ja(r, "ホラーが読みたい") for r in recs)
    assert all("Horror" in r.reason for r in recs)


def test_unwanted_tag_is_avoided(model, catalog):
    recs = model.recommend(liked_text="恋愛は苦手、少女漫画が好き", k=10)
    tags = [item_tags(catalog.get(r.mal_id)) for r in recs]
    assert all("Shoujo" in t and "Romance" not in t for t in tags)


def _unrelated_title(catalog, ratings, anchor: int) -> int:
    """An obscure catalog title with no review and no tag or author shared with ``anchor``."""
    rated = {r.mal_id for r in ratings}
    a = catalog.get(anchor)
    for it in catalog.items[4000:]:
        if it.mal_id not in rated and not set(item_tags(it)) & set(item_tags(a)) and not set(it.authors) & set(a.authors):
            return it.mal_id
    raise AssertionError("no unrelated title found")


def test_collaborative_signal_lifts_a_co_rated_title(catalog, ratings, model):
    target = _unrelated_title(catalog, ratings, BERSERK)
    other = _unrelated_title(catalog, ratings, ONE_PIECE)
    assert other != target
    everything = len(catalog) - 1

    def ranking(m):
        return [r.mal_id for r in m.recommend([(BERSERK, 10)], k=everything)]

    before = ranking(model)
    extra = [Rating(f"synthetic-{n}", m, 9) for n in range(25) for m in (BERSERK, target)]
    boosted = HybridRecommender.build(catalog, ratings=[*ratings, *extra])
    assert boosted.co_count(BERSERK, target) == 25 and boosted.co_count(BERSERK, other) == 0
    after = ranking(boosted)
    # the co-rated title climbs and ranks above an equally obscure title nobody co-rated
    assert after.index(target) < before.index(target) and after.index(target) < 200
    assert after.index(target) < after.index(other)
    # CF alone ranks it first
    cf_only = boosted.with_weights(FusionWeights(cf=1.0, content=0.0, text=0.0, era=0.0, popularity=0.0, reviews=0.0,
                                                     quality=0.0))
    assert cf_only.recommend([(BERSERK, 10)], k=1)[0].mal_id == target
    rec = boosted.recommend([(BERSERK, 10)], k=everything)[after.index(target)]
    assert rec.because_of == (BERSERK,) and "readers who rated Berserk highly" in rec.reason


def test_fit_ease_matches_the_closed_form_and_skips_lone_items():
    import numpy as np
    import scipy.sparse as sp

    # users x items; item 3 is only reviewed by a user with no other review (no co-occurrence)
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0]], dtype=float))
    active, B = fit_ease(X, lam=2.0)
    assert active.tolist() == [0, 1, 2]
    G = (X.T @ X).toarray() + 2.0 * np.eye(4)
    P = np.linalg.inv(G)
    full = -P / np.diag(P)[None, :]
    np.fill_diagonal(full, 0.0)
    np.testing.assert_allclose(B, full[:3, :3], rtol=1e-5, atol=1e-6)
    assert np.allclose(full[3, :3], 0) and np.allclose(full[:3, 3], 0)  # the left-out item has no weight


def test_era_signal_prefers_titles_of_the_same_period(model, catalog):
    berserk_year = start_year(catalog.get(BERSERK))
    assert berserk_year == 1989
    era = model.signals([(BERSERK, 10)])["era"]
    years = {i: start_year(it) for i, it in enumerate(model.items)}
    same = [era[i] for i, y in years.items() if y == 1989]
    far = [era[i] for i, y in years.items() if y is not None and abs(y - 1989) >= 15]
    none = [era[i] for i, y in years.items() if y is None]
    assert min(same) == pytest.approx(1.0) and max(far) < 0.01
    assert all(v == 0 for v in none)
    assert not model.signals([])["era"].any()


def test_excluded_ratings_do_not_reach_the_model(catalog, ratings, model):
    by_user: dict[str, list[int]] = {}
    for r in ratings:
        if r.score >= LIKED_SCORE and catalog.get(r.mal_id):
            by_user.setdefault(r.user_id, []).append(r.mal_id)
    user, (a, b) = next((u, ms[:2]) for u, ms in sorted(by_user.items()) if len(ms) >= 2)
    full = model.co_count(a, b)
    assert full >= 1
    masked = HybridRecommender.build(catalog, ratings=ratings, exclude_ratings=[(user, b)])
    assert masked.co_count(a, b) == full - 1
    assert masked.n_train_ratings == model.n_train_ratings - 1


def test_loo_cases_hide_a_liked_title_outside_history(catalog, ratings):
    ids = {it.mal_id for it in catalog.items}
    dev = loo_cases(ratings, ids, split="dev")
    test = loo_cases(ratings, ids, split="test")
    assert dev and test and not {c.user_id for c in dev} & {c.user_id for c in test}
    scores = {(r.user_id, r.mal_id): r.score for r in ratings}
    for c in dev[:200]:
        assert scores[(c.user_id, c.hidden)] >= LIKED_SCORE
        assert c.hidden not in {m for m, _ in c.history} and len(c.history) >= 1
    assert loo_cases(ratings, ids, split="dev") == dev  # seeded


def test_eval_on_a_small_sample(catalog, ratings):
    summary = run_recommend_eval(sample=40, split="dev")
    assert summary["n_users"] == 40
    assert set(summary["variants"]) == {"fused", "cf_only", "content_only", "era_only", "popularity_only"}
    for m in [summary["baseline"], *summary["variants"].values()]:
        for key in ("hit_rate", "ndcg", "coverage"):
            assert 0.0 <= m[key] <= 1.0
        assert m["ndcg"] <= m["hit_rate"]
    # the popularity baseline, recomputed from the same 40 cases: the most-members titles not in the history
    cases = loo_cases(ratings, {it.mal_id for it in catalog.items}, split="dev", sample=40)
    by_members = [it.mal_id for it in sorted(catalog.items, key=lambda it: (-it.members, it.mal_id))]
    base_hits = sum(c.hidden in [m for m in by_members if m not in {h for h, _ in c.history}][:10] for c in cases)
    assert summary["baseline"]["hit_rate"] == base_hits / 40
    # the fused hit-rate, recomputed: a model fitted without the hidden pairs, top 10 of each history
    model = HybridRecommender.build(catalog, ratings=ratings, exclude_ratings=[(c.user_id, c.hidden) for c in cases])
    fused_hits = sum(c.hidden in [r.mal_id for r in model.recommend(c.history, k=10)] for c in cases)
    fused = summary["variants"]["fused"]["hit_rate"]
    assert fused == fused_hits / 40 and fused_hits > 0
    assert summary["ratio"] == (fused / (base_hits / 40) if base_hits else float("inf"))
    assert summary["target_met"] is (summary["ratio"] >= 2.5)
    assert len(summary["ratio_ci95"]) == 2 and summary["ratio_ci95"][0] <= summary["ratio_ci95"][1]


def test_bootstrap_ratio_interval_brackets_the_ratio():
    model_hits = [1.0] * 30 + [0.0] * 170  # 0.15
    base_hits = [1.0] * 10 + [0.0] * 190  # 0.05 → ratio 3
    lo, hi = bootstrap_ratio_interval(model_hits, base_hits)
    assert 1.5 < lo < 3.0 < hi < 8.0
    assert bootstrap_ratio_interval([1.0, 0.0], [0.0, 0.0]) == (0.0, 0.0)


def test_parse_request_validation():
    assert parse_request('{"history": [{"mal_id": 2, "score": 9}], "text": "horror"}') == ([(2, 9.0)], "horror")
    assert parse_request("{}") == ([], "")
    for bad in ("not json", "[1]", '{"history": [{"mal_id": "2", "score": 9}]}',
                '{"history": [{"mal_id": 2, "score": 11}]}', '{"text": 3}', '{"history": {"mal_id": 2}}'):
        with pytest.raises(RequestError):
            parse_request(bad)


def test_cli_answers_lines_then_exits_2_on_a_malformed_line():
    app, eval_app, bench_app = typer.Typer(), typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app, bench_app)
    lines = '{"history": [{"mal_id": 2, "score": 10}]}\n\n{"text": "ホラー"}\n{"history": [{"mal_id": "x"}]}\n{}\n'
    result = CliRunner().invoke(app, ["recommend", "--json", "--k", "3"], input=lines)
    assert result.exit_code == 2
    out = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(out) == 2
    assert [len(o["items"]) for o in out] == [3, 3]
    assert all(i["mal_id"] != 2 for i in out[0]["items"])
    assert "line 4" in result.stderr
