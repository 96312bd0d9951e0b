"""Entity linking over the shipped catalog (tools/backends/entities.py): titles and authors a message names, EN and
JA, including readings, family names and typos; general questions link nothing (or only a weak title)."""

from __future__ import annotations

import pytest

from tools.backends.catalog import load_catalog
from tools.backends.entities import EntityLinker


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    return EntityLinker(load_catalog().items)


@pytest.mark.parametrize("text,author,how", [
    ("anything by Ai Yazawa?", "Ai Yazawa", "exact"),
    ("Inoue Takehiko's manga", "Takehiko Inoue", None),
    ("manga by Urasawa", "Naoki Urasawa", "family"),
    ("浅野いにおの漫画", "Inio Asano", "reading"),
    ("尾田栄一郎の新刊ある？", "Eiichiro Oda", None),
    ("books by Naoki Urasowa", "Naoki Urasawa", "fuzzy"),
])
def test_author_requests_resolve_to_the_catalogs_name(linker, text, author, how):
    req = linker.link(text).author_request
    assert req is not None and req.key == author, linker.link(text).to_dict()
    if how:
        assert req.how == how
    works = linker.works_of(author)
    assert works and req.ids[0] == works[0]


@pytest.mark.parametrize("text,title", [
    ("do you have Vagabond?", "vagabond"),
    ("vinland sgaa", "vinland saga"),
    ("Chainsw Man?", "chainsaw man"),
])
def test_a_message_that_is_a_title_is_an_exact_title(linker, text, title):
    m = linker.link(text).exact_title
    assert m is not None and m.key == title


@pytest.mark.parametrize("text", [
    "how many moons does Jupiter have?",
    "tell me who the president of France is",
    "少女漫画のおすすめ",
    "where is my order",
])
def test_general_questions_and_genre_words_link_nothing(linker, text):
    assert not linker.link(text).has_entity, linker.link(text).to_dict()


def test_a_title_made_of_ordinary_words_inside_a_question_is_weak(linker):
    linked = linker.link("who is the prime minister of Japan?")
    assert all(m.weak for m in linked.titles) and not linked.has_entity


@pytest.mark.parametrize("text", ["", "   ", "?!", "ｱｲｳ", "a" * 5000, None, 42])
def test_odd_input_links_nothing_and_never_raises(linker, text):
    assert linker.link(text).mentions == ()


def test_resolve_author_accepts_any_form(linker):
    assert linker.resolve_author("Yazawa Ai") == linker.resolve_author("矢沢あい") == "Ai Yazawa"
    assert linker.resolve_author("nobody at all") is None


def _general_questions() -> list[str]:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures" / "general_questions.txt"
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def test_general_questions_shaped_like_searches_are_out_of_scope(linker):
    from nodes.scope import catalog_scope

    questions = _general_questions()
    kept = [q for q in questions if catalog_scope(["search"], linker.link(q), q) != ["out_of_scope"]]
    assert len(questions) >= 50 and not kept, kept


@pytest.mark.parametrize("text,key", [
    ("the Death Note order", "death note"),
    ("got any All You Need Is Kill?", "all yo ned is kill"),  # compared normalised ("Need" → "ned")
    ("would you happen to have Teasing Master Takagi-san?", "teasing master takagi san"),
    ("I'm after a copy of JoJo's Bizarre Adventure Part 5: Golden Wind", "jojo s bizarre adventure part 5 golden wind"),
])
def test_a_title_of_ordinary_words_written_as_a_name_is_a_named_title(linker, text, key):
    linked = linker.link(text)
    assert [m.key for m in linked.named_titles] == [key]
    assert all(m.weak and m.how == "name" for m in linked.named_titles)
    assert not linked.has_entity  # still weak evidence: routing only uses it with a store or suggestion cue


def test_the_same_words_in_lower_case_or_one_capitalised_word_are_not_names(linker):
    assert linker.link("my death note order").named_titles == []
    assert linker.link("tell me who the CEO of Apple is").named_titles == []


@pytest.mark.parametrize("text,key", [
    ("ok, different question: is Judge finished?", "judge"),
    ("another thing, is Reborn! complete?", "reborn"),
    ("one more thing — do you have Monster?", "monster"),
])
def test_a_title_that_is_a_whole_clause_after_a_lead_in_is_the_requested_title(linker, text, key):
    linked = linker.link(text)
    assert linked.exact_title is not None and linked.exact_title.key == key and linked.has_entity


def test_a_hyphenated_capitalised_title_is_written_as_a_name(linker):
    linked = linker.link("would you happen to have Tsubaki-chou Lonely Planet?")
    assert [m.key for m in linked.named_titles] == ["tsubaki cho lonely planet"]
    assert linker.link("would you happen to have tsubaki-chou lonely planet?").named_titles == []


def test_linking_from_many_threads_at_once_never_raises(linker):
    """The server links messages in worker threads (asyncio.to_thread, tools run in executors); Sudachi's tokenizer
    refuses concurrent use ("Tokenizer is already in use"), which failed turns of the soak under load."""
    from concurrent.futures import ThreadPoolExecutor

    texts = ["浦沢直樹の漫画ある？", "浅野いにおさんの新刊", "尾田栄一郎の作品を探して", "manga by Urasawa"] * 100
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: linker.link(t).to_dict(), texts))
    assert results[0]["author"] and results[0] == results[4]


def test_a_linker_cached_on_disk_links_as_the_one_built(linker, tmp_path):
    """Later starts load the linker from the model dir (its build is seconds of every start); the Sudachi reader is
    reopened on load, so Japanese author names still resolve."""
    import pickle

    from tools.backends.entities import shared_linker

    clone = pickle.loads(pickle.dumps(linker))
    for text in ("浅野いにおの漫画", "anything by Ai Yazawa?", "do you have Vagabond?", "ベルセルクはありますか"):
        assert clone.link(text).to_dict() == linker.link(text).to_dict(), text
    catalog = load_catalog()
    built = shared_linker(catalog, tmp_path)
    assert list(tmp_path.glob("linker-*.pkl"))  # written once
    shared_linker.cache_clear()
    loaded = shared_linker(catalog, tmp_path)
    assert loaded is not built and loaded.link("浅野いにおの漫画").to_dict() == built.link("浅野いにおの漫画").to_dict()
