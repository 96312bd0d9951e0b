"""Local router: intent mapping coverage, split disjointness, and routing of typical EN/JA messages."""

from __future__ import annotations

import pytest

from core.ports import INTENTS
from core.settings import get_settings
from tools.backends import router_data
from tools.backends.models.local_router import (
    AUTHOR_MARK,
    INTENT_CUES,
    TITLE_MARK,
    LocalRouter,
    TitleGazetteer,
    cue_features,
    is_entity_only,
    mask_titles,
    split_clauses,
)


@pytest.fixture(scope="module")
def dataset() -> router_data.RouterDataset:
    return router_data.build_dataset()


@pytest.fixture(scope="module")
def router() -> LocalRouter:
    # The shared model cache (settings.model_dir): the CLI, the agents and the tests reuse one fitted
    # model, so a clean CI machine trains at most once (~15 s of CPU).
    return LocalRouter.load_or_train(get_settings().model_dir)


def test_mapping_covers_every_source_intent_with_a_reason():
    mapping = router_data.load_mapping()
    missing = router_data.source_intents() - set(mapping)
    assert not missing, f"unmapped source intents: {sorted(missing)}"
    rows = router_data._read_csv(router_data.MAPPING_PATH)
    assert all(r["reason"].strip() for r in rows)
    assert set(mapping.values()) <= set(INTENTS)
    assert mapping[("clinc150", "order_status")] == "order"
    assert mapping[("clinc150", "greeting")] == "chitchat"
    assert mapping[("bitext", "contact_human_agent")] == "handoff"


def test_derived_test_titles_and_templates_never_appear_in_train(dataset):
    def templates(split):
        ids = set()
        for u in dataset.split(split):
            if u.source == "derived":
                ids.update(p.split(":")[-1] for p in u.origin.split("+"))
        return {i for i in ids if i in dataset.template_split}

    train_t, test_t = templates("train"), templates("test")
    assert test_t and not (train_t & test_t)
    assert all(dataset.template_split[t] == "test" for t in test_t)
    train_ids = {m for u in dataset.train for m in u.mal_ids}
    test_ids = {m for u in dataset.test for m in u.mal_ids}
    assert test_ids and not (train_ids & test_ids)
    train_texts = {u.text.strip().lower() for u in dataset.train}
    assert not any(u.text.strip().lower() in train_texts for u in dataset.test)


def test_real_test_data_is_clinc_val_and_a_bitext_slice(dataset):
    sources = {u.source for u in dataset.test if u.real}
    assert sources == {"clinc150", "bitext"}
    assert sum(u.source == "clinc150" for u in dataset.test) >= 3000  # CLINC val + oos_val
    assert any(len(u.labels) == 2 for u in dataset.test)
    assert any(u.complex for u in dataset.train)


@pytest.mark.parametrize("text, label", [
    ("do you have One Piece vol 3?", "search"),
    ("ワンピースの3巻ありますか", "search"),
    ("something like Berserk", "recommend"),
    ("where is my order", "order"),
    ("MA-10003をキャンセルして", "order"),
    ("show my orders", "order"),  # listing orders: no template says it; the order cue carries it
    ("what did I order?", "order"),  # the store's own order-id format (order cue)
    ("what is your return policy", "faq"),
    ("hello", "chitchat"),
    ("I want to talk to a human", "handoff"),
    ("what's the weather", "out_of_scope"),
    ("vinland sgaa", "search"),  # mistyped bare title: the catalog-similarity signal
    ("I loved Monster. Any suggestions?", "recommend"),  # recommend cue drops search
    ("what about the second one?", "search"),  # follow-up on a result list
    ("井上雄彦の漫画ありますか", "search"),  # a Japanese author name (catalog authors_ja): an author search
    ("any books by Takehiko Inoue?", "search"),
])
def test_single_intent_messages(router, text, label):
    d = router.route(text)
    assert d.intents == [label], (text, d.intents, d.scores)
    assert set(d.scores) == set(INTENTS)
    assert all(0.0 <= v <= 1.0 for v in d.scores.values())


def test_multi_intent_message_carries_both_labels(router):
    d = router.route("find Naruto and where is my order?")
    assert set(d.intents) == {"search", "order"}, d


async def test_aroute_and_route_many_agree_with_route(router):
    texts = ["hello", "do you have Berserk vol 2?", "find Naruto and where is my order?", "進撃の巨人みたいな漫画ある？"]
    batch = router.route_many(texts)
    # Same decisions; scores equal to float rounding (the MLP's matrix products sum in another order per batch size)
    for b, one in zip(batch, [router.route(t) for t in texts]):
        assert (b.intents, b.complex) == (one.intents, one.complex)
        assert b.scores == pytest.approx(one.scores, abs=1e-6)
    single = await router.aroute(texts[1])
    assert single.intents == batch[1].intents and single.scores == pytest.approx(batch[1].scores, abs=1e-6)


def test_cue_features_mark_each_labels_vocabulary():
    texts = ["can I speak to your manager", "オペレーターにつないで", "where is order 4512345678", "注文が届かない",
             "what is your shipping fee to Canada", "送料はいくら", "hi, thanks!", "こんにちは", "do you have Berserk?"]
    m = cue_features(texts).toarray()
    assert m.shape == (len(texts), len(INTENT_CUES)) and list(INTENT_CUES) == ["handoff", "order", "faq", "chitchat"]
    expected = ["handoff", "handoff", "order", "order", "faq", "faq", "chitchat", "chitchat", None]
    for row, label in zip(m, expected):
        assert [lab for lab, v in zip(INTENT_CUES, row) if v] == ([label] if label else [])
    assert cue_features(["cancel MA-10005"]).toarray()[0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert cue_features([]).shape == (0, len(INTENT_CUES))


def test_held_out_handoff_wording_routes_to_handoff(router):
    # "customer care" occurs in no template nor real utterance: only the cue vocabulary relates it to handoff
    assert "handoff" in router.route("put me through to customer care").intents


def test_empty_text_is_rejected(router):
    with pytest.raises(ValueError):
        router.route("   ")
    assert router.route_many([]) == []


def test_typo_changes_one_letter_deterministically():
    import random

    a = router_data.typo("Vinland Saga", random.Random(1))
    assert a == router_data.typo("Vinland Saga", random.Random(1))
    assert a != "Vinland Saga" and abs(len(a) - len("Vinland Saga")) <= 1
    assert router_data.typo("Nana", random.Random(1)) == "Nana"


def test_split_clauses():
    assert split_clauses("find X and where is my order?") == ["find X", "where is my order"]
    assert split_clauses("ありますか。それと注文はどこ？") == ["ありますか", "注文はどこ"]
    assert split_clauses("hello") == ["hello"]
    assert split_clauses("manga similar to R.n.D: Read or Die") == ["manga similar to R.n.D: Read or Die"]
    assert split_clauses("Thanks. Do you have vol 1.5?") == ["Thanks", "Do you have vol 1.5"]
    # a bare "also"/"plus" is an adverb inside a clause; after a comma or "and" it coordinates
    assert split_clauses("fans of X also like what?") == ["fans of X also like what"]
    assert split_clauses("find X, also where is my order") == ["find X", "where is my order"]
    assert split_clauses("find X and also where is my order") == ["find X", "where is my order"]


def test_entity_only_clauses():
    assert is_entity_only(TITLE_MARK.strip())
    assert is_entity_only(f"{TITLE_MARK} と {TITLE_MARK}。")
    assert is_entity_only(f"{TITLE_MARK} or {AUTHOR_MARK}?")
    assert is_entity_only(f"{TITLE_MARK} please") and is_entity_only(f"{TITLE_MARK} と {TITLE_MARK}でお願いします")
    assert not is_entity_only(f"{TITLE_MARK} vol 2")
    assert not is_entity_only(f"where is {TITLE_MARK}")


@pytest.mark.parametrize("text", ["give me something like Berserk and Vinland Saga",
                                  "fans of Berserk also like what?"])
def test_a_second_title_of_a_recommend_request_does_not_add_search(router, text):
    # "something like Monster and Pluto please" is asserted on the served turn (tests/graph/test_supervisor.py):
    # "Pluto" is a word of the real training utterances, so the router alone does not mask it as a title
    assert router.route(text).intents == ["recommend"]


def test_a_coordinated_request_still_adds_its_label(router):
    assert set(router.route("do you have Berserk and Vinland Saga? also where is my order").intents) == {"search", "order"}


def test_complex_flag_needs_a_back_reference(router):
    assert router.route("find a manga like Berserk and add volume 1 of it to my cart").complex
    assert not router.route("find Naruto and where is my order?").complex
    assert not router.route("do you have One Piece vol 3?").complex


def test_gazetteer_masks_titles_and_author_names():
    g = TitleGazetteer(["One Piece", "ワンピース", "Match"], real_texts=["light the match please"],
                       authors=["Eiichiro Oda", "尾田栄一郎", "Mani", "井上", "One Piece"])
    assert g.mask("books by Eiichiro Oda?") == f"books by {AUTHOR_MARK}?"
    assert g.mask("尾田栄一郎の漫画") == f"{AUTHOR_MARK}の漫画"
    assert g.mask("do you have one piece") == f"do you have {TITLE_MARK}"  # a title wins over an author form
    assert g.mask("ワンピースの3巻") == f"{TITLE_MARK}の3巻"
    # one-word pen names, two-character Japanese names and phrases of the real utterances stay text
    assert g.mask("reservations at mani") == "reservations at mani"
    assert g.mask("井上さん") == "井上さん"
    assert g.mask("light the match") == "light the match"


@pytest.mark.parametrize("text, label", [
    ("top picks for Fantasy readers", "recommend"),  # the lexical-only router read it as out_of_scope
    ("担当の方と直接お話しできますか", "handoff"),  # no handoff cue word, no training template says it
    ("明日の大阪の天気は？", "out_of_scope"),
])
def test_the_sentence_encoder_carries_phrasings_no_template_has(router, text, label):
    assert router.encoder is not None and router.encoder_mean.shape == (router.encoder.dim,)
    assert router.route(text).intents == [label]


def test_an_unknown_router_encoder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown router encoder"):
        LocalRouter.load_or_train(tmp_path, encoder="bert")
    assert not list(tmp_path.iterdir())  # nothing trained or written


def test_a_bare_title_one_slip_away_is_masked_as_a_title(router):
    texts = ["vinland sgaa", "Chainsw Man?", "where is my order", "vinland saga", "dont know", "進撃の巨人"]
    masked = mask_titles(router.gazetteer, router.similarity, texts)
    assert masked[0] == masked[1] == TITLE_MARK  # one keyboard slip from "vinland saga" / "chainsaw man"
    assert masked[2] == "where is my order" and masked[4] == "dont know"  # ordinary phrases stay
    assert masked[3].strip() == masked[5].strip() == TITLE_MARK.strip()  # the gazetteer's exact matches


def test_mistyped_bare_held_out_titles_route_to_search(router, dataset):
    # Held-out (test-split) titles with one keyboard slip each, as customers type them. 0.92 measured
    # (lexical-only router 0.75; the encoder without the one-slip rule 0.80).
    import random

    from tools.backends.catalog import load_catalog

    pools = router_data._title_pools(load_catalog())
    rng = random.Random(1)
    typos = [router_data.typo(t[1][0], rng) for t in pools.titles["test"][:300]]
    share = sum("search" in d.intents for d in router.route_many(typos)) / len(typos)
    assert share >= 0.88, share


def test_fused_scoring_equals_the_fitted_estimators(router):
    """The router scores with one matrix product for the seven linear models and a numpy pass through the MLP;
    the probabilities are the estimators' own predict_proba, to float rounding."""
    import numpy as np
    import scipy.sparse as sp

    texts = ["Do you have Berserk?", "返品したいです", "recommend me a fantasy manga and where is my order?", "hi"]
    masked = mask_titles(router.gazetteer, router.similarity, texts)
    D = router._dense_columns(masked, texts)
    X = sp.hstack([router.features.transform(masked), sp.csr_matrix(D)], format="csr")
    linear = np.column_stack([m.predict_proba(X)[:, 1] for m in router.models])
    expected = router.mlp_mix * linear + (1.0 - router.mlp_mix) * router.mlp.predict_proba(D)
    assert np.allclose(router._proba(masked, texts), expected, atol=1e-5)
