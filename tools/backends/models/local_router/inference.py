"""Routing at run time: ``LocalRouter`` scores a message and its clauses and keeps labels by the tuned thresholds.

The scores are the per-label logistic models as one fused sparse product, mixed with the MLP's
probabilities when the router has an encoder; the labels kept follow ``training.keep_labels``. Building a router
(``LocalRouter.train``, ``load_or_train``, ``cache_key``) is ``training``'s job: these methods delegate to it.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import FeatureUnion

from core.ports import INTENTS, RouterDecision
from core.settings import RouterEncoderName, Settings
from tools.backends import router_data
from tools.backends.catalog import InMemoryCatalog
from tools.backends.models.artifacts import ShippedArtifacts
from tools.backends.models.encoder import EmbeddingCache, Encoder, Progress
from tools.backends.models.local_router import training
from tools.backends.models.local_router.features import (
    TitleGazetteer,
    TitleSimilarity,
    dense_features,
    encoder_text,
    has_recommend_cue,
    is_complex,
    is_entity_only,
    mask_titles,
    split_clauses,
)
from tools.backends.models.local_router.training import Scored, TrainReport, keep_labels


def _expit(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-z), elementwise (what the log-loss SGD models and the MLP's multi-label
    output apply to their scores)."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


class LocalRouter:
    """Multi-label intent router (implements ``core.ports.Router``) over the seven intent labels (``core.ports.INTENTS``).

    Pipeline per message: catalog titles are masked (``TitleGazetteer``), the catalog signal is computed
    on the raw text (``TitleSimilarity``), the whole message and each of its clauses (``split_clauses``)
    are scored by seven one-vs-rest SGD logistic models, and labels are kept by ``keep_labels`` with per-label
    thresholds tuned on the dev split. Build with ``LocalRouter.train(dataset)`` or, normally,
    ``LocalRouter.load_or_train(cache_dir)``. ``route``/``aroute``/``route_many`` raise ValueError on
    empty or whitespace-only text. ``RouterDecision.scores`` always holds all seven labels (0-1).
    """

    def __init__(self, gazetteer: TitleGazetteer, similarity: TitleSimilarity, features: FeatureUnion,
                 models: Sequence[SGDClassifier], thresholds: np.ndarray | float = 0.5,
                 clause_thresholds: np.ndarray | float = 0.5, cue_rule: bool = True,
                 use_similarity: bool = True, report: TrainReport | None = None,
                 encoder: Encoder | None = None, encoder_mean: np.ndarray | None = None,
                 encoder_weight: float = 1.0, clause_min: np.ndarray | float = 0.0):
        self.clause_min = np.broadcast_to(np.asarray(clause_min, dtype=np.float64), (len(INTENTS),)).copy()
        self.encoder = encoder
        self.encoder_mean = encoder_mean
        self.encoder_weight = encoder_weight
        self.gazetteer = gazetteer
        self.similarity = similarity
        self.features = features
        self.models = list(models)
        self.thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(INTENTS),)).copy()
        self.clause_thresholds = np.broadcast_to(np.asarray(clause_thresholds, dtype=np.float64), (len(INTENTS),)).copy()
        self.cue_rule = cue_rule
        self.use_similarity = use_similarity
        self.report = report

    # ---- building: delegated to ``training`` ------------------------------------------------

    @classmethod
    def train(cls, dataset: router_data.RouterDataset, catalog: InMemoryCatalog | None = None,
              alpha: float = 1e-5, epochs: int = 15, cue_rule: bool = True, use_similarity: bool = True,
              char_max: int = 150_000, seed: int = 0, encoder: Encoder | None = None,
              encoder_weight: float = 1.0, embedding_cache: EmbeddingCache | None = None,
              progress: Progress | None = None, mlp_mix: float = 0.7, mlp_hidden: int = 256) -> LocalRouter:
        """Fit on ``dataset.train``; tune per-label thresholds on ``dataset.dev`` (if any) by F1.

        ``training.fit`` with this class; its docstring describes every argument and what a fit costs.
        """
        router: LocalRouter = training.fit(
            cls, dataset, catalog, alpha=alpha, epochs=epochs, cue_rule=cue_rule, use_similarity=use_similarity,
            char_max=char_max, seed=seed, encoder=encoder, encoder_weight=encoder_weight,
            embedding_cache=embedding_cache, progress=progress, mlp_mix=mlp_mix, mlp_hidden=mlp_hidden)
        return router

    @staticmethod
    def cache_key(encoder: RouterEncoderName = "use") -> str:
        """``training.cache_key``: 16 hex chars over the training inputs, this package's source, ``MODEL_VERSION``
        and the encoder's model name. Raises ValueError for an unknown encoder name."""
        return training.cache_key(encoder)

    @classmethod
    def cache_path(cls, cache_dir: pathlib.Path, encoder: RouterEncoderName = "use") -> pathlib.Path:
        """``<cache_dir>/local_router-<cache_key>.pkl``: where ``load_or_train`` keeps the fitted router
        (``training.cache_path``)."""
        return training.cache_path(cache_dir, encoder)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRouter:
        """``load_or_train(settings.model_dir, settings.router_encoder)``: the router every caller uses."""
        return cls.load_or_train(settings.model_dir, settings.router_encoder)

    @classmethod
    def load_or_train(cls, cache_dir: pathlib.Path, encoder: RouterEncoderName = "use",
                      shipped: ShippedArtifacts | None = None) -> LocalRouter:
        """The cached router of ``cache_dir``, else the one shipped in data/models, else a fit saved into
        ``cache_dir`` (``training.load_or_train``, which describes each step). Raises ValueError for an unknown
        encoder name."""
        router: LocalRouter = training.load_or_train(cls, cache_dir, encoder, shipped)
        return router

    # ---- inference -------------------------------------------------------------------------

    _lookup: dict[str, np.ndarray] | None = None  # texts embedded ahead of time, during train() only
    mlp: MLPClassifier | None = None
    mlp_mix: float = 1.0

    def _embed(self, masked: Sequence[str]) -> np.ndarray:
        """(n, encoder.dim) encoder columns: embedding − training mean, re-normalised, × ``encoder_weight``."""
        texts = [encoder_text(m) for m in masked]
        if self._lookup is not None:
            E = np.stack([self._lookup[t] for t in texts]) if texts else np.zeros((0, self.encoder.dim), np.float32)
        else:
            E = self.encoder.encode(texts)
        E = E - self.encoder_mean
        E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-9)
        return (self.encoder_weight * E).astype(np.float32)

    def _dense_columns(self, masked: Sequence[str], raw: Sequence[str]) -> np.ndarray | None:
        """(n, 6 + encoder.dim) float32: the catalog signal and cue columns, then the encoder columns (each part only
        when switched on; None when neither is)."""
        parts = []
        if self.use_similarity:
            parts.append(dense_features(self.similarity.similarity(raw), raw).toarray())
        if self.encoder is not None:
            parts.append(self._embed(masked))
        return np.hstack(parts).astype(np.float32) if parts else None

    def _proba(self, masked: Sequence[str], raw: Sequence[str]) -> np.ndarray:
        X = self.features.transform(masked)
        D = self._dense_columns(masked, raw)
        if D is not None:
            X = sp.hstack([X, sp.csr_matrix(D)], format="csr")
        W, b = self._fused()
        P = _expit(np.asarray(X @ W) + b)
        if self.mlp is not None:
            hidden = np.maximum(D @ self.mlp.coefs_[0] + self.mlp.intercepts_[0], 0.0)  # ReLU
            P = self.mlp_mix * P + (1.0 - self.mlp_mix) * _expit(hidden @ self.mlp.coefs_[1] + self.mlp.intercepts_[1])
        return P

    def _fused(self) -> tuple[np.ndarray, np.ndarray]:
        """The seven linear models as one (n_features, 7) coefficient matrix and (7,) intercepts, built on first use.

        Why: scoring them one by one through ``predict_proba`` spent most of its time in scikit-learn's input
        validation (seven checks per call, plus the MLP's: ~16 a turn, ~4-5 ms of a turn's CPU); one sparse
        product and a logistic give the estimators' own probabilities, to float rounding (tests/unit/test_router.py)."""
        if self.__dict__.get("_W") is None:
            self.__dict__["_W"] = np.column_stack([m.coef_.ravel() for m in self.models]).astype(np.float32)
            self.__dict__["_b"] = np.array([float(m.intercept_[0]) for m in self.models], dtype=np.float32)
        return self.__dict__["_W"], self.__dict__["_b"]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_W", "_b")}  # rebuilt on first use

    def _score(self, texts: Sequence[str]) -> Scored:
        masked = mask_titles(self.gazetteer, self.similarity, texts)
        clauses_raw = [split_clauses(t) for t in texts]
        clauses = [split_clauses(m) for m in masked]
        for i, c in enumerate(clauses):  # drop later clauses that are only a title/author (is_entity_only)
            if len(c) > 1 and len(clauses_raw[i]) == len(c):
                kept = [k for k in range(len(c)) if k == 0 or not is_entity_only(c[k])]
                clauses[i] = [c[k] for k in kept]
                clauses_raw[i] = [clauses_raw[i][k] for k in kept]
        multi = [i for i, c in enumerate(clauses) if len(c) > 1 and len(clauses_raw[i]) == len(c)]
        flat = [c for i in multi for c in clauses[i]]
        flat_raw = [c for i in multi for c in clauses_raw[i]]
        P = self._proba(list(masked) + flat, list(texts) + flat_raw)
        n = len(masked)
        probs, rest = P[:n], P[n:]
        clause_top = np.zeros_like(probs)
        clause_top_plain = np.zeros_like(probs)
        if len(rest):
            owner = np.repeat(np.array(multi), [len(clauses[i]) for i in multi])
            top, val = rest.argmax(axis=1), rest.max(axis=1)
            np.maximum.at(clause_top, (owner, top), val)
            plain = np.array([not has_recommend_cue(c) for c in flat])
            np.maximum.at(clause_top_plain, (owner[plain], top[plain]), val[plain])
        cue = np.array([has_recommend_cue(t) for t in texts], dtype=bool)
        return Scored(probs, clause_top, clause_top_plain, cue, [is_complex(c) for c in clauses])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Whole-message per-label probabilities, shape (len(texts), 7) in ``core.ports.INTENTS`` order."""
        return self._score(texts).probs

    def route_many(self, texts: Sequence[str]) -> list[RouterDecision]:
        """Batched routing: one RouterDecision per text, the same as ``route`` on each (same intents and complex
        flag; scores equal to within 1e-6, since the MLP's matrix products round differently per batch size).

        Intents are ordered by score (max of the message's and its clauses' probabilities), best first.
        Raises ValueError if any text is empty or whitespace-only (its index is named).
        """
        for i, t in enumerate(texts):
            if not t or not t.strip():
                raise ValueError(f"text {i} is empty; the router needs a non-empty message")
        if not texts:
            return []
        sc = self._score(texts)
        keep = keep_labels(sc, self.thresholds, self.clause_thresholds, self.cue_rule, self.clause_min)
        scores = np.maximum(sc.probs, sc.clause_top)
        out = []
        for k, row, cx in zip(keep, scores, sc.complex):
            labs = [INTENTS[j] for j in sorted(np.flatnonzero(k), key=lambda j: -row[j])]
            out.append(RouterDecision(intents=labs, scores={lab: float(p) for lab, p in zip(INTENTS, row)}, complex=cx))
        return out

    def route(self, text: str) -> RouterDecision:
        """Route one message (ValueError when empty)."""
        return self.route_many([text])[0]

    async def aroute(self, text: str, history: Sequence[str] = (), focus: Any = None) -> RouterDecision:
        """Async form of ``route`` for the Router protocol, run in a worker thread (``asyncio.to_thread``).

        ``route`` is CPU-bound (~5-15 ms a message: title masking, TF-IDF, the sentence encoder, the
        classifiers; the encoder loads its model from disk on first use), so it never runs on the event loop:
        other requests keep being served meanwhile. ``history`` and ``focus`` are accepted but unused: this model
        classifies the message alone; the classify node resolves follow-ups against the dialogue state. Raises
        ValueError when ``text`` is empty, as ``route`` does."""
        import asyncio

        return await asyncio.to_thread(self.route, text)

    @staticmethod
    def confidence(decision: RouterDecision) -> float:
        """The top label's probability (0-1): a simple confidence for the classify node."""
        return max(decision.scores.values()) if decision.scores else 0.0
