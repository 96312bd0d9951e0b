"""OpenSearchIndex at its HTTP boundary: exact request bodies sent, response bodies (tests/fixtures/opensearch) parsed, errors and retries.

No OpenSearch server runs here, so the real opensearch-py client (transport, serializer, helpers.bulk,
retry loop) talks to ``ReplayConnection``: a ``opensearchpy.Connection`` that records every request
and answers with response bodies written to the OpenSearch REST API format. Request bodies are
compared with golden files under tests/fixtures/opensearch/requests/ (rewrite them with
OPENSEARCH_FIXTURES_UPDATE=1 after an intended change, then review the diff). Embedding values are
replaced by a placeholder in the golden files and checked numerically instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from opensearchpy import Connection, OpenSearch

from core.domain import SearchHit
from tools.backends.opensearch_index import (
    OpenSearchBoosts,
    OpenSearchIndex,
    SearchBackendError,
    SearchUnavailable,
    index_body,
    open_client,
)
from tools.backends.search_index import LsaEmbedder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "opensearch"
UPDATE = bool(os.environ.get("OPENSEARCH_FIXTURES_UPDATE"))
BERSERK, ONE_PIECE, AOT = 2, 13, 23390
DIM = 8


class Replay:
    """Scripted responses (status, fixture name) served in order, and the requests seen (method, url, params, body)."""

    def __init__(self, *responses: tuple[int, str]):
        self.responses = list(responses)
        self.requests: list[tuple[str, str, dict, bytes | None]] = []


class ReplayConnection(Connection):
    """An opensearch-py Connection that records requests and replays fixture response bodies (no network)."""

    def __init__(self, replay: Replay, **kwargs):
        super().__init__(**kwargs)
        self.replay = replay

    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.replay.requests.append((method, url, dict(params or {}), body))
        if not self.replay.responses:
            raise AssertionError(f"unexpected request {method} {url}")
        status, name = self.replay.responses.pop(0)
        raw = (FIXTURES / name).read_text(encoding="utf-8")
        if not (200 <= status < 300) and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json; charset=UTF-8"}, raw


def client(replay: Replay, **kw) -> OpenSearch:
    return open_client("http://search.test:9200", connection_class=ReplayConnection, replay=replay, **kw)


@pytest.fixture(scope="module")
def items(catalog):
    return [catalog.get(BERSERK), catalog.get(ONE_PIECE), catalog.get(AOT)]


@pytest.fixture(scope="module")
def embedder(catalog):
    return LsaEmbedder.fit_catalog(catalog.items[:400], dim=DIM)


def _ndjson(body: bytes) -> list[dict]:
    assert body.endswith(b"\n"), "NDJSON bodies end with a newline"
    return [json.loads(line) for line in body.decode().splitlines()]


def _strip_vectors(obj):
    """Replace embedding arrays by "<vector:n>" so golden files do not depend on float noise."""
    if isinstance(obj, dict):
        return {k: (f"<vector:{len(v)}>" if k in ("embedding", "vector") and isinstance(v, list) else _strip_vectors(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strip_vectors(v) for v in obj]
    return obj


def assert_golden(name: str, actual) -> None:
    path = FIXTURES / "requests" / name
    actual = _strip_vectors(actual)
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {path} (run with OPENSEARCH_FIXTURES_UPDATE=1)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


# ---- index body ------------------------------------------------------------------------------------


def test_index_body_has_kuromoji_ngram_knn_and_rank_feature():
    body = index_body(DIM)
    settings, props = body["settings"], body["mappings"]["properties"]
    assert settings["index"]["knn"] is True
    ja = settings["analysis"]["analyzer"]["ja"]
    assert settings["analysis"]["tokenizer"][ja["tokenizer"]]["type"] == "kuromoji_tokenizer"
    assert "kuromoji_baseform" in ja["filter"] and "cjk_width" in ja["filter"]
    assert settings["analysis"]["tokenizer"]["title_ngram"] == {
        "type": "ngram", "min_gram": 2, "max_gram": 3, "token_chars": ["letter", "digit"]}
    assert props["title_ja"]["analyzer"] == "ja" and props["authors_ja"]["analyzer"] == "ja"
    assert props["titles"]["fields"]["edge"]["search_analyzer"] == "title_words"
    assert props["embedding"]["type"] == "knn_vector" and props["embedding"]["dimension"] == DIM
    assert props["embedding"]["method"]["space_type"] == "cosinesimil"
    assert props["members"] == {"type": "rank_feature"}


# ---- bulk load -------------------------------------------------------------------------------------


def test_bulk_load_sends_create_index_bulk_ndjson_and_refresh(items, embedder):
    replay = Replay((200, "create_index.response.json"), (200, "bulk.response.json"), (200, "refresh.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    assert index.bulk_load(items) == 3

    (m1, u1, _, b1), (m2, u2, _, b2), (m3, u3, _, _) = replay.requests
    assert (m1, u1) == ("PUT", "/manga-catalog")
    assert json.loads(b1) == index_body(DIM)
    assert_golden("create_index.request.json", json.loads(b1))

    assert (m2, u2) == ("POST", "/_bulk")
    lines = _ndjson(b2)
    assert [ln for ln in lines[::2]] == [{"index": {"_index": "manga-catalog", "_id": str(i)}} for i in (BERSERK, ONE_PIECE, AOT)]
    docs = lines[1::2]
    assert docs[0]["titles"][0] == "berserk" and "ベルセルク" in docs[0]["title_ja"]
    assert docs[0]["authors"][0] == "kentaro miura"  # MAL "Kentarou Miura", long vowel folded
    assert [d["authors_ja"] for d in docs] == [list(it.authors_ja) for it in items]
    assert "尾田栄一郎" in docs[1]["authors_ja"]  # One Piece: Japanese names sent as written, for kuromoji
    assert docs[0]["members"] == items[0].members + 1
    want = embedder.embed([" ".join([it.title, it.title_en, it.title_ja, *it.synonyms, *it.authors]) for it in items])
    np.testing.assert_allclose(np.array([d["embedding"] for d in docs]), want, atol=1e-6)
    assert_golden("bulk.request.ndjson.json", lines)

    assert (m3, u3) == ("POST", "/manga-catalog/_refresh")


def test_bulk_item_errors_raise_search_backend_error(items, embedder):
    replay = Replay((200, "bulk_errors.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    with pytest.raises(SearchBackendError, match="1 catalog documents failed") as err:
        index.bulk_load(items, create=False)
    assert err.value.info[0]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert not isinstance(err.value, SearchUnavailable)


def test_create_index_that_exists_is_a_backend_error_not_retried(embedder):
    replay = Replay((400, "create_index_exists.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    with pytest.raises(SearchBackendError) as err:
        index.create_index(DIM)
    assert err.value.status == 400 and "resource_already_exists_exception" in str(err.value)
    assert len(replay.requests) == 1


# ---- search ----------------------------------------------------------------------------------------


def test_search_sends_hybrid_query_and_parses_hits_with_volume(embedder):
    replay = Replay((200, "search_berserk.response.json"))
    index = OpenSearchIndex(client(replay), embedder, boosts=OpenSearchBoosts(knn=1.0))
    hits = index.search("Berserk vol 3", k=5)
    assert hits == [SearchHit(BERSERK, 41.37, 3), SearchHit(113958, 17.92, 3), SearchHit(101263, 6.05, 3)]

    [(method, url, _, body)] = replay.requests
    assert (method, url) == ("POST", "/manga-catalog/_search")
    sent = json.loads(body)
    assert sent["size"] == 5
    should = sent["query"]["bool"]["must"][0]["bool"]["should"]
    assert should[0]["multi_match"]["query"] == "berserk"  # volume marker removed, text normalised
    assert should[0]["multi_match"]["fuzziness"] == "AUTO"
    assert {"term": {"titles.exact": {"value": "berserk", "boost": 5.0}}} in should
    knn = [c["knn"]["embedding"] for c in should if "knn" in c][0]
    np.testing.assert_allclose(knn["vector"], embedder.embed(["berserk"])[0], atol=1e-6)
    assert sent["query"]["bool"]["should"][0]["rank_feature"]["field"] == "members"
    assert_golden("search_berserk_vol3.request.json", sent)


def test_search_japanese_query_keeps_raw_text_for_kuromoji(embedder):
    replay = Replay((200, "search_berserk.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    hits = index.search("ベルセルク 第3巻")
    assert hits[0] == SearchHit(BERSERK, 41.37, 3)
    should = json.loads(replay.requests[0][3])["query"]["bool"]["must"][0]["bool"]["should"]
    assert {"match": {"title_ja": {"query": "ベルセルク", "boost": 1.0}}} in should
    assert {"match": {"authors_ja": {"query": "ベルセルク", "boost": 1.0}}} in should
    assert not any("knn" in c for c in should)  # knn boost 0 by default


def test_empty_and_garbage_queries_send_nothing(embedder):
    replay = Replay()
    index = OpenSearchIndex(client(replay), embedder)
    assert index.search("") == [] and index.search("  !!! ") == [] and index.search("Berserk", k=0) == []
    assert index.search_many(["", "???"]) == [[], []]
    assert replay.requests == []


def test_search_many_sends_one_msearch_and_keeps_query_order(embedder):
    replay = Replay((200, "msearch.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    out = index.search_many(["Berserk #2", "", "進撃の巨人", "zzzqqq"], k=2)
    assert [[h.mal_id for h in hs] for hs in out] == [[BERSERK, 113958], [], [AOT, 58007], []]
    assert out[0][0].volume == 2 and out[2][0].volume is None

    [(method, url, _, body)] = replay.requests
    assert (method, url) == ("POST", "/_msearch")
    lines = _ndjson(body)
    assert lines[0::2] == [{"index": "manga-catalog"}] * 3
    assert [ln["query"]["bool"]["must"][0]["bool"]["should"][0]["multi_match"]["query"] for ln in lines[1::2]] == [
        "berserk", "進撃ノ巨人", "zzzqqq"]  # normalize folds hiragana to katakana on both sides
    assert_golden("msearch.request.ndjson.json", lines)


def test_msearch_sub_query_rejection_raises_search_unavailable(embedder):
    replay = Replay((200, "msearch_partial_error.response.json"))
    index = OpenSearchIndex(client(replay), embedder)
    with pytest.raises(SearchUnavailable, match="rejected_execution_exception") as err:
        index.search_many(["Berserk", "One Piece"])
    assert err.value.status == 429


# ---- failure path and retry policy -----------------------------------------------------------------


def test_503_then_success_is_retried_by_the_transport(embedder):
    replay = Replay((503, "error_503.response.json"), (200, "search_berserk.response.json"))
    index = OpenSearchIndex(client(replay, max_retries=2), embedder)
    assert index.search("Berserk")[0].mal_id == BERSERK
    assert len(replay.requests) == 2 and replay.requests[0][3] == replay.requests[1][3]


def test_429_past_max_retries_raises_search_unavailable(embedder):
    replay = Replay(*[(429, "error_429.response.json")] * 3)
    index = OpenSearchIndex(client(replay, max_retries=2), embedder)
    with pytest.raises(SearchUnavailable) as err:
        index.search("Berserk")
    assert err.value.status == 429 and "rejected_execution_exception" in str(err.value)
    assert len(replay.requests) == 3  # first try + max_retries


def test_retry_on_status_is_configurable(embedder):
    replay = Replay((503, "error_503.response.json"))
    index = OpenSearchIndex(client(replay, max_retries=3, retry_on_status=(429,)), embedder)
    with pytest.raises(SearchUnavailable, match="search_phase_execution_exception"):
        index.search("Berserk")
    assert len(replay.requests) == 1


# ---- katakana loanwords: the app-side phonetic pass ----------------------------------------------

BLEACH, DEATH_NOTE, HUNTER_X_HUNTER = 12, 21, 26
SCROLL = ((200, "scroll_titles.response.json"), (200, "scroll_end.response.json"), (200, "clear_scroll.response.json"))


def _phonetic_clauses(body: dict) -> dict[int, float]:
    should = body["query"]["bool"]["must"][0]["bool"]["should"]
    return {c["constant_score"]["filter"]["term"]["mal_id"]: c["constant_score"]["boost"]
            for c in should if "constant_score" in c}


def test_load_phonetic_reads_the_titles_in_one_scroll():
    replay = Replay(*SCROLL)
    index = OpenSearchIndex(client(replay))
    assert index.load_phonetic(batch_size=500) == 6

    (m1, u1, p1, b1), (m2, u2, _, b2), (m3, u3, _, b3) = replay.requests
    assert (m1, u1) == ("POST", "/manga-catalog/_search")
    assert {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in p1.items()} == {"scroll": "5m", "size": "500"}
    assert json.loads(b1) == {"_source": ["mal_id", "titles"], "query": {"match_all": {}}, "sort": "_doc"}
    sid = json.loads((FIXTURES / "scroll_titles.response.json").read_text())["_scroll_id"]
    assert (m2, u2, json.loads(b2)) == ("POST", "/_search/scroll", {"scroll_id": sid, "scroll": "5m"})
    assert (m3, u3, json.loads(b3)) == ("DELETE", "/_search/scroll", {"scroll_id": [sid]})


def test_a_katakana_loanword_query_carries_phonetic_candidate_clauses():
    replay = Replay(*SCROLL, (200, "search_berserk.response.json"))
    index = OpenSearchIndex(client(replay))
    index.load_phonetic()
    index.search("ブリーチ", k=5)
    sent = json.loads(replay.requests[-1][3])
    clauses = _phonetic_clauses(sent)
    assert max(clauses, key=clauses.get) == BLEACH and clauses[BLEACH] > 1.5  # boost 2.0 × a near-perfect match
    assert all(0 < v <= 2.0 for v in clauses.values())
    assert_golden("search_loanword.request.json", sent)

    for q, want in (("ハンターハンター", HUNTER_X_HUNTER), ("デスノートって何巻まで出てる", DEATH_NOTE)):
        c = _phonetic_clauses(index.query_body(q)[0])
        assert max(c, key=c.get) == want, (q, c)


def test_no_phonetic_clause_for_latin_text_a_katakana_title_or_before_loading():
    index = OpenSearchIndex(client(Replay(*SCROLL)))
    assert _phonetic_clauses(index.query_body("ブリーチ")[0]) == {}  # load_phonetic not called yet
    index.load_phonetic()
    assert _phonetic_clauses(index.query_body("bleach")[0]) == {}
    assert _phonetic_clauses(index.query_body("キーチ")[0]) == {}  # the catalog's own katakana title (Kiichi!!)
    assert _phonetic_clauses(index.query_body("届いた本のカバーが破れていました")[0]) == {}

    replay = Replay()
    off = OpenSearchIndex(client(replay), boosts=OpenSearchBoosts(phonetic=0.0))
    assert off.load_phonetic() == 0 and replay.requests == []


def test_a_shard_failing_the_scroll_is_a_backend_error_and_the_scroll_is_cleared():
    replay = Replay((200, "scroll_shard_failure.response.json"), (200, "clear_scroll.response.json"))
    index = OpenSearchIndex(client(replay))
    with pytest.raises(SearchBackendError, match="catalog scroll failed"):
        index.load_phonetic()
    assert replay.requests[-1][:2] == ("DELETE", "/_search/scroll")
    assert _phonetic_clauses(index.query_body("ブリーチ")[0]) == {}  # nothing half-loaded
