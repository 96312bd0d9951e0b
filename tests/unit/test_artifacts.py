"""Shipped artifacts (data/models): the manifest's checks, the shipped title embeddings, progress without a terminal."""

from __future__ import annotations

import json
import pickle
import shutil

import joblib
import numpy as np
import pytest

from tools.backends.models.artifacts import SHIPPED_DIR, ShippedArtifacts, package_version, sha256_file
from tools.backends.models.encoder import DIM, EmbeddingCache, embedding_progress, text_key, write_shipped_embeddings


class CountingEncoder:
    """A deterministic stand-in for the sentence encoder that records which texts it was asked to embed."""

    name = "counting"
    dim = DIM

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, progress=None):
        self.seen.extend(texts)
        rng = [np.random.default_rng(int.from_bytes(text_key(t)[:4], "little")) for t in texts]
        out = np.stack([r.standard_normal(DIM) for r in rng]).astype(np.float32) if texts else np.zeros((0, DIM))
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress:
            progress(len(texts), len(texts))
        return out


def _router_dir(tmp_path, key="k1", encoder="e5", sklearn=None, name="models"):
    d = tmp_path / name
    d.mkdir()
    f = d / f"local_router-{key}.pkl"
    f.write_bytes(pickle.dumps({"a router": 1}))
    ShippedArtifacts(d).write_manifest({"router": {
        "file": f.name, "cache_key": key, "encoder": encoder, "sklearn": sklearn or package_version("scikit-learn"),
        "sha256": sha256_file(f), "bytes": f.stat().st_size}})
    return d, f


def test_router_path_only_for_the_same_key_encoder_and_sklearn_minor(tmp_path):
    d, f = _router_dir(tmp_path)
    shipped = ShippedArtifacts(d)
    assert shipped.router_path("k1", "e5") == f
    assert shipped.router_path("k2", "e5") is None
    assert shipped.router_path("k1", "none") is None
    d2, _ = _router_dir(tmp_path, sklearn="0.1.0", name="old-sklearn")
    assert ShippedArtifacts(d2).router_path("k1", "e5") is None


def test_a_shipped_router_whose_bytes_changed_is_an_error_not_a_silent_load(tmp_path):
    d, f = _router_dir(tmp_path)
    f.write_bytes(f.read_bytes() + b"x")
    with pytest.raises(ValueError, match="SHA-256"):
        ShippedArtifacts(d).router_path("k1", "e5")


def test_check_names_each_stale_part(tmp_path):
    d, f = _router_dir(tmp_path)
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", enc.name)
    emb = d / "title-embeddings.npz"
    write_shipped_embeddings(emb, cache, enc, ["ONE PIECE", "BLEACH"])
    m = ShippedArtifacts(d).manifest()
    m["title_embeddings"] = {"file": emb.name, "model": enc.name, "texts": 2, "sha256": sha256_file(emb),
                             "bytes": emb.stat().st_size}
    ShippedArtifacts(d).write_manifest(m)
    keys = {text_key("ONE PIECE"), text_key("BLEACH")}
    assert ShippedArtifacts(d).check("k1", "e5", keys) == []
    problems = ShippedArtifacts(d).check("k2", "e5", keys | {text_key("NARUTO")})
    assert len(problems) == 2
    assert "key k1" in problems[0] and "k2" in problems[0]
    assert "1 of the catalog's 3 title forms" in problems[1]
    f.write_bytes(b"changed")
    assert any("does not match the SHA-256" in p for p in ShippedArtifacts(d).check("k1", "e5", keys))
    assert ShippedArtifacts(tmp_path / "nowhere").check("k1", "e5") == [f"no {tmp_path / 'nowhere' / 'manifest.json'}"]


def test_shipped_embeddings_are_used_instead_of_encoding_and_not_copied_into_the_cache(tmp_path):
    enc = CountingEncoder()
    shipped = tmp_path / "shipped.npz"
    n = write_shipped_embeddings(shipped, EmbeddingCache(tmp_path / "build", enc.name), enc, ["ONE PIECE", "BLEACH", "BLEACH"])
    assert n == 2
    want = enc.encode(["ONE PIECE", "BLEACH"])
    fresh = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "user", fresh.name, shipped=shipped)
    got = cache.encode(fresh, ["BLEACH", "NARUTO", "ONE PIECE"])
    assert fresh.seen == ["NARUTO"]  # only the text the shipped file lacks is embedded
    np.testing.assert_allclose(got[[2, 0]], want, atol=2e-3)  # float16 round trip
    cache.save()
    assert set(joblib.load(cache.path)) == {text_key("NARUTO")}


def test_a_malformed_shipped_file_is_reported(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, keys=np.zeros((2, 8), np.uint8), vectors=np.zeros((2, DIM), np.float16))
    with pytest.raises(ValueError, match="expected keys"):
        EmbeddingCache(tmp_path, "x", shipped=bad)


def test_progress_without_a_terminal_prints_plain_lines_whatever_the_log_level(capsys):
    with embedding_progress("Indexing titles") as progress:
        progress(0, 1000)
        for done in range(100, 1001, 100):
            progress(done, 1000)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("Indexing titles: 1000 texts, about 0:09")
    assert len(lines) == 11  # the announcement, then one line per 10 %
    assert lines[-1].startswith("Indexing titles: 1000/1000 texts (100%)") and "left" in lines[-1]


def test_the_repository_ships_current_artifacts():
    """CI's guard: data/models holds the router fitted from today's data and code and every title's embedding.
    After changing the router, its training data or the catalog, run `mangaassist train` and commit data/models."""
    from tools.backends.build_artifacts import check_artifacts

    assert check_artifacts() == []


def test_a_fresh_model_dir_loads_the_shipped_router_without_fitting(tmp_path):
    from tools.backends.models.local_router import LocalRouter

    shipped = ShippedArtifacts(SHIPPED_DIR)
    manifest = shipped.manifest()
    assert manifest, "no data/models/manifest.json"
    copy = tmp_path / "models"
    copy.mkdir()
    shutil.copy(SHIPPED_DIR / manifest["router"]["file"], copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    model_dir = tmp_path / "fresh"
    router = LocalRouter.load_or_train(model_dir, manifest["router"]["encoder"], shipped=ShippedArtifacts(copy))
    assert isinstance(router, LocalRouter)
    assert not model_dir.exists()  # nothing was fitted or written
    assert router.route("Do you have Berserk?").intents[0] == "search"
