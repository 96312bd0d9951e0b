"""Fitting the local router: the estimators, the per-label threshold rule and its tuning, and the model cache.

``fit`` builds the catalog indexes and features (``features``), fits one ``SGDClassifier(loss="log_loss")`` per
label and, with an encoder, the MLP on the dense columns, then tunes the per-label thresholds of ``keep_labels`` on
the dev split (``tune_thresholds``). ``load_or_train`` is the path every caller takes: the cached pickle keyed by
``cache_key``, else the router shipped in data/models, else a fit saved into the cache. The router class itself
lives in ``inference`` and is passed in (``router_cls``), so this module never imports it.
"""

from __future__ import annotations

import pathlib
import pickle
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from core.ports import INTENTS
from core.settings import ROUTER_ENCODER_NAMES, RouterEncoderName
from tools.backends import router_data
from tools.backends.catalog import InMemoryCatalog, load_catalog
from tools.backends.fit_cache import dump_pickle_atomic
from tools.backends.models.artifacts import ShippedArtifacts
from tools.backends.models.encoder import EmbeddingCache, Encoder, Progress, embedding_progress, make_encoder
from tools.backends.models.local_router.features import (
    TitleGazetteer,
    TitleSimilarity,
    encoder_text,
    make_features,
    mask_titles,
    split_clauses,
)

MODEL_VERSION = "local-router-8"
"""Bump when the features, estimator or decision rule change (invalidates cached models)."""

THRESHOLD_GRID = tuple(round(float(x), 2) for x in np.arange(0.10, 0.96, 0.05))
CLAUSE_MIN_GRID = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2)
"""Candidate whole-message minimum probabilities for a label a clause asks for (log-spaced; 0 = no minimum)."""


@dataclass
class Scored:
    """Raw model outputs for n messages.

    ``probs`` (n, 7) whole-message probabilities; ``clause_top`` (n, 7) per label the highest probability
    of a clause whose top label it is (0 when none, or when the message has one clause);
    ``clause_top_plain`` the same over clauses without a recommend cue; ``cue`` (n,) recommend cue in the
    message; ``complex`` the back-reference flags.
    """

    probs: np.ndarray
    clause_top: np.ndarray
    clause_top_plain: np.ndarray
    cue: np.ndarray
    complex: list[bool]


_SEARCH = INTENTS.index("search")
_RECOMMEND = INTENTS.index("recommend")


def keep_labels(sc: Scored, thresholds: np.ndarray, clause_thresholds: np.ndarray, cue_rule: bool = True,
                clause_min: np.ndarray | float = 0.0) -> np.ndarray:
    """Boolean (n, 7): the labels each message carries (the package docstring describes the rule).

    ``thresholds``/``clause_thresholds``/``clause_min`` are per label (7,) or scalars. With ``cue_rule``, a message with a
    recommend cue keeps ``search`` only if a clause without a cue has search as its top label with
    probability ≥ its clause threshold; if that leaves no label, the message is a recommend request.
    """
    n = len(sc.probs)
    top = np.zeros_like(sc.probs, dtype=bool)
    top[np.arange(n), sc.probs.argmax(axis=1)] = True
    keep = (sc.probs >= thresholds) | ((sc.clause_top >= clause_thresholds) & (sc.probs >= clause_min)) | top
    if cue_rule:
        cthr = clause_thresholds[_SEARCH] if np.ndim(clause_thresholds) else clause_thresholds
        drop = sc.cue & (sc.clause_top_plain[:, _SEARCH] < cthr)
        keep[drop, _SEARCH] = False
        keep[drop & ~keep.any(axis=1), _RECOMMEND] = True
    return keep


def _f1_per_label(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Binary F1 per column of two boolean (n, 7) matrices (0 when a label has no gold and no predictions)."""
    tp = (pred & gold).sum(axis=0)
    fp = (pred & ~gold).sum(axis=0)
    fn = (~pred & gold).sum(axis=0)
    return 2 * tp / np.maximum(2 * tp + fp + fn, 1)


def tune_thresholds(sc: Scored, gold: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID,
                    cue_rule: bool = True, min_grid: Sequence[float] = CLAUSE_MIN_GRID,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label (threshold, clause_threshold, clause_min) maximising each label's F1 on a labelled split.

    Every label's decision depends only on its own triple (the cue rule aside), so maximising each F1
    maximises macro-F1. Ties go to the triple closest to (0.5, 0.5, 0). ~2 s on the 4.7k-item dev split.
    Returns (thresholds (7,), clause_thresholds (7,), clause_min (7,), F1 (7,)).
    """
    best_f = np.full(len(INTENTS), -1.0)
    best_t = np.full(len(INTENTS), 0.5)
    best_c = np.full(len(INTENTS), 0.5)
    best_m = np.zeros(len(INTENTS))
    best_d = np.full(len(INTENTS), np.inf)
    for a in grid:
        for b in grid:
            for m in min_grid:
                f = _f1_per_label(gold, keep_labels(sc, a, b, cue_rule, m))
                d = abs(a - 0.5) + abs(b - 0.5) + m
                better = (f > best_f + 1e-12) | ((np.abs(f - best_f) <= 1e-12) & (d < best_d))
                best_f = np.where(better, f, best_f)
                best_t = np.where(better, a, best_t)
                best_c = np.where(better, b, best_c)
                best_m = np.where(better, m, best_m)
                best_d = np.where(better, d, best_d)
    return best_t, best_c, best_m, best_f


@dataclass
class TrainReport:
    """What one training run did: sizes, CPU and wall seconds per stage, the tuned thresholds and dev macro-F1."""

    n_train: int
    n_dev: int
    seconds: float
    cpu_seconds: float
    thresholds: dict[str, float]
    clause_thresholds: dict[str, float]
    clause_min: dict[str, float]
    dev_macro_f1: float
    stages_s: dict[str, float] = field(default_factory=dict)


def fit(router_cls: Any, dataset: router_data.RouterDataset, catalog: InMemoryCatalog | None = None,
        alpha: float = 1e-5, epochs: int = 15, cue_rule: bool = True, use_similarity: bool = True,
        char_max: int = 150_000, seed: int = 0, encoder: Encoder | None = None,
        encoder_weight: float = 1.0, embedding_cache: EmbeddingCache | None = None,
        progress: Progress | None = None, mlp_mix: float = 0.7, mlp_hidden: int = 256) -> Any:
    """A ``router_cls`` (``inference.LocalRouter``) fitted on ``dataset.train``, with per-label thresholds tuned on
    ``dataset.dev`` (if any) by F1; ``LocalRouter.train`` calls this.

    ``alpha`` is the L2 strength and ``epochs`` the passes of each SGD logistic model
    (``class_weight="balanced"``, fixed ``seed``: the fit is deterministic). ``catalog`` feeds the
    gazetteer and the catalog signal (default: the shipped catalog). ``cue_rule``/``use_similarity``
    switch the recommend-cue rule and the catalog signal off for ablations. ``encoder`` (None = lexical
    only) adds its embeddings, centred on their training mean, as ``encoder_weight`` × a unit vector;
    ``embedding_cache`` supplies already-embedded texts and ``progress(done, total)`` follows the embedding.
    With an encoder, a one-hidden-layer MLP (``mlp_hidden`` ReLU units, Adam, 30 epochs, fixed seed) is also
    fitted on the dense columns (catalog signal, cues, embedding) and each probability becomes
    ``mlp_mix`` × linear + (1 − ``mlp_mix``) × MLP (``mlp_mix=1`` switches it off).
    13-21 s of CPU without an encoder; with one, plus ~9 ms per text not in the cache and ~45 s for the MLP
    (package docstring). alpha 1e-5, weight 1.0 and mlp_mix 0.7 were chosen on dev macro-F1 (weights
    1/1.5/2, alpha 1e-5/3e-5/1e-4, mix 0.5/0.6/0.7/1.0).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    stages: dict[str, float] = {}
    catalog = catalog or load_catalog()
    real = [u.text for u in dataset.train if u.real]
    forms = [t for it in catalog.items for t in (it.title, it.title_en, it.title_ja, *it.synonyms)]
    authors = [a for it in catalog.items for a in (*it.authors, *it.authors_ja)]
    gazetteer = TitleGazetteer(forms, real, authors)
    similarity = TitleSimilarity(forms, real)
    stages["catalog_indexes"] = time.perf_counter() - t0
    raw = [u.text for u in dataset.train]
    t = time.perf_counter()
    texts = mask_titles(gazetteer, similarity, raw)
    features = make_features(char_max)
    X = features.fit_transform(texts)
    router = router_cls(gazetteer, similarity, features, [], cue_rule=cue_rule, use_similarity=use_similarity,
                        encoder=encoder, encoder_weight=encoder_weight)
    stages["features"] = time.perf_counter() - t
    if encoder is not None:
        t = time.perf_counter()
        # every text the fit and the dev tuning will embed, in one pass (progress covers the whole wait)
        dev_masked = mask_titles(gazetteer, similarity, [u.text for u in dataset.dev])
        clause_texts = [c for m in dev_masked for c in split_clauses(m)]
        todo = [encoder_text(m) for m in texts + dev_masked + clause_texts]
        embed = embedding_cache.encode if embedding_cache is not None else (lambda enc, xs, p: enc.encode(xs, p))
        vectors = dict(zip(todo, embed(encoder, todo, progress)))
        E = np.stack([vectors[encoder_text(m)] for m in texts])
        router.encoder_mean = E.mean(axis=0)
        router._lookup = vectors
        stages["embed"] = time.perf_counter() - t
    D = router._dense_columns(texts, raw)
    if D is not None:
        X = sp.hstack([X, sp.csr_matrix(D)], format="csr")
    Y = MultiLabelBinarizer(classes=list(INTENTS)).fit_transform([u.labels for u in dataset.train])
    t = time.perf_counter()
    router.models = [SGDClassifier(loss="log_loss", alpha=alpha, max_iter=epochs, tol=None,
                                   class_weight="balanced", random_state=seed).fit(X, Y[:, j])
                     for j in range(len(INTENTS))]
    stages["fit"] = time.perf_counter() - t
    if encoder is not None and mlp_mix < 1.0:
        t = time.perf_counter()
        with warnings.catch_warnings():  # a fixed budget of epochs, deterministic; not run to convergence
            warnings.simplefilter("ignore", ConvergenceWarning)
            router.mlp = MLPClassifier(hidden_layer_sizes=(mlp_hidden,), alpha=1e-4, max_iter=30,
                                       random_state=seed).fit(D, Y)
        router.mlp_mix = mlp_mix
        stages["mlp_fit"] = time.perf_counter() - t
    dev_f1 = float("nan")
    if dataset.dev:
        t = time.perf_counter()
        sc = router._score([u.text for u in dataset.dev])
        gold = MultiLabelBinarizer(classes=list(INTENTS)).fit_transform([u.labels for u in dataset.dev]).astype(bool)
        router.thresholds, router.clause_thresholds, router.clause_min, f1 = tune_thresholds(sc, gold, cue_rule=cue_rule)
        dev_f1 = float(f1.mean())
        stages["dev_tuning"] = time.perf_counter() - t
    router._lookup = None
    router.report = TrainReport(len(texts), len(dataset.dev), time.perf_counter() - t0, time.process_time() - c0,
                                dict(zip(INTENTS, router.thresholds.round(2).tolist())),
                                dict(zip(INTENTS, router.clause_thresholds.round(2).tolist())),
                                dict(zip(INTENTS, router.clause_min.tolist())), dev_f1, stages)
    return router


PACKAGE_DIR = pathlib.Path(__file__).parent
"""This package's directory: its modules' source is part of ``cache_key``."""


def package_source() -> str:
    """The source of every module of this package, concatenated in file-name order (``__init__``, ``features``,
    ``inference``, ``training``): any edit to the router's code changes ``cache_key``."""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(PACKAGE_DIR.glob("*.py"), key=lambda p: p.name))


def cache_key(encoder: RouterEncoderName = "use") -> str:
    """First 16 hex chars of SHA-256 over the training inputs, the source of this package's modules
    (``package_source``), ``MODEL_VERSION`` and the encoder's model name. Raises ValueError for an unknown
    encoder name."""
    model = make_encoder(encoder)
    tag = MODEL_VERSION + (model.name if model is not None else "lexical")
    return router_data.data_fingerprint(tag + package_source())[:16]


def cache_path(cache_dir: pathlib.Path, encoder: RouterEncoderName = "use") -> pathlib.Path:
    """``<cache_dir>/local_router-<cache_key>.pkl``: where ``load_or_train`` keeps the fitted router.

    A plain pickle (protocol 5, ~14 MB): the C unpickler loads it in ~0.1 s, where ``joblib.load`` (a
    Python-level unpickler) took ~1.3 s, most of a later start."""
    return pathlib.Path(cache_dir) / f"local_router-{cache_key(encoder)}.pkl"


def load_or_train(router_cls: Any, cache_dir: pathlib.Path, encoder: RouterEncoderName = "use",
                  shipped: ShippedArtifacts | None = None) -> Any:
    """Load ``<cache_dir>/local_router-<cache_key>.pkl``, else the router shipped in ``shipped`` (data/models,
    built by ``mangaassist train``) when its key, encoder and scikit-learn minor version match; if neither
    fits, build the dataset, train and save atomically into ``cache_dir``.

    ``router_cls`` is ``inference.LocalRouter`` (a loaded object of another class is ignored). ``cache_dir`` is
    normally ``core.settings.get_settings().model_dir`` (shared by runs and tests, so a clean machine trains once).
    ``encoder`` is ``settings.router_encoder``: "use" (default) or "e5" (the first fit embeds the training texts,
    ~2-3 minutes on 2 cores with USE, ~7 with e5, with a progress bar on a terminal and a log line per 10 %
    otherwise) or "none". Older cached versions in ``cache_dir`` are left in place (a few MB each).
    Raises ValueError for another encoder name.
    """
    if encoder not in ROUTER_ENCODER_NAMES:
        raise ValueError(f"unknown router encoder {encoder!r}; expected one of {ROUTER_ENCODER_NAMES}")
    cache_dir = pathlib.Path(cache_dir)
    path = cache_path(cache_dir, encoder)
    shipped = shipped or ShippedArtifacts()
    candidates = (lambda: path, lambda: shipped.router_path(cache_key(encoder), encoder))
    for candidate in (find() for find in candidates):
        if candidate is not None and candidate.exists():
            with candidate.open("rb") as fh:  # our own files only: the user's cache or data/models (hash-checked)
                obj = pickle.load(fh)
            if isinstance(obj, router_cls):
                return obj
    model = make_encoder(encoder)
    if model is not None:
        embeddings = EmbeddingCache(cache_dir, model_name=model.name)
        with embedding_progress("Training the router: embedding the training utterances (once)",
                                seconds_per_text=0.001 if encoder == "use" else 0.009) as progress:
            router = fit(router_cls, router_data.build_dataset(), encoder=model,
                         embedding_cache=embeddings, progress=progress)
        embeddings.save()
    else:
        router = fit(router_cls, router_data.build_dataset())
    dump_pickle_atomic(router, path)
    return router
