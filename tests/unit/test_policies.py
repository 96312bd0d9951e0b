"""Policy knowledge base: section parsing, bilingual retrieval, and the no-answer threshold."""

from __future__ import annotations

import pytest

from core.domain import PolicyPassage
from tools.backends.policies import DEFAULT_POLICY_DIR, MarkdownPolicyKB, parse_markdown


@pytest.fixture(scope="module")
def kb() -> MarkdownPolicyKB:
    return MarkdownPolicyKB.load()


def test_both_locales_have_the_same_documents_and_section_counts():
    for locale in ("en", "ja"):
        assert (DEFAULT_POLICY_DIR / locale).is_dir()
    en = {p.name: len(parse_markdown(p, "en")) for p in (DEFAULT_POLICY_DIR / "en").glob("*.md")}
    ja = {p.name: len(parse_markdown(p, "ja")) for p in (DEFAULT_POLICY_DIR / "ja").glob("*.md")}
    assert en == ja
    assert set(en) >= {"shipping.md", "payment.md", "returns.md", "cancellation.md", "accounts.md", "contact.md"}


def test_parse_markdown_splits_on_level_two_headings(tmp_path):
    f = tmp_path / "demo.md"
    f.write_text("# Demo title\nintro ignored\n## First\nline one\nline two\n\n## Second\nbody\n## Empty\n", encoding="utf-8")
    secs = parse_markdown(f, "en")
    assert [(s.heading, s.text, s.title, s.doc) for s in secs] == [
        ("First", "line one line two", "Demo title", "demo"), ("Second", "body", "Demo title", "demo")]


@pytest.mark.parametrize(
    ("query", "locale", "doc", "must_contain"),
    [
        ("how much is shipping", "en", "shipping", "¥350"),
        ("送料はいくらですか", "ja", "shipping", "350円"),
        ("can I pay with PayPay?", "en", "payment", "PayPay"),
        ("コンビニ払いはできますか", "ja", "payment", "190円"),
        ("how do I reset my password", "en", "accounts", "reset link"),
        ("パスワードを忘れました", "ja", "accounts", "再設定"),
        ("can I cancel an order that already shipped", "en", "cancellation", "return"),
        ("返品はできますか", "ja", "returns", "30日"),
        ("how long does a refund take to my card", "en", "returns", "3–5 business days"),
        ("unsubscribe from the newsletter", "en", "accounts", "unsubscribe"),
    ],
)
def test_retrieves_the_relevant_section_first(kb, query, locale, doc, must_contain):
    hits = kb.retrieve(query, k=2, locale=locale)
    assert hits and all(isinstance(h, PolicyPassage) for h in hits)
    assert hits[0].doc == doc, [(h.doc, h.heading, h.score) for h in hits]
    assert must_contain in hits[0].text
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_shipping_cost_section_answers_both_languages(kb):
    en = kb.retrieve("how much is shipping", locale="en")[0]
    ja = kb.retrieve("送料はいくらですか", locale="ja")[0]
    assert en.heading == "Shipping costs in Japan" and "¥3,000" in en.text
    assert ja.heading.startswith("国内配送の送料") and "3,000円" in ja.text


@pytest.mark.parametrize(
    ("query", "locale"),
    [("what's the weather", "en"), ("今日の天気は？", "ja"), ("tell me a joke", "en"), ("what is my credit score", "en"),
     ("こんにちは", "ja"), ("", "en"), ("   ", "ja")],
)
def test_unrelated_questions_get_nothing(kb, query, locale):
    assert kb.retrieve(query, locale=locale) == []


def test_retrieval_is_restricted_to_the_locale(kb):
    assert all(h.text.isascii() or "¥" in h.text for h in kb.retrieve("international shipping to Europe", locale="en"))
    ja_hits = kb.retrieve("海外発送はしていますか", locale="ja")
    assert ja_hits and ja_hits[0].heading == "海外発送"
    # an unknown locale falls back to English rather than failing
    assert kb.retrieve("how much is shipping", locale="fr")[0].heading == "Shipping costs in Japan"


def test_k_bounds_the_number_of_passages(kb):
    assert len(kb.retrieve("refund for a returned order paid by card", k=1)) == 1
    assert kb.retrieve("refund for a returned order paid by card", k=0) == []


def test_load_raises_without_policy_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        MarkdownPolicyKB.load(tmp_path)
