"""The `local` profile's router: a scikit-learn multi-label intent classifier trained on the shipped utterances.

Features: TF-IDF character n-grams (``char_wb``, 1-4: robust to typos and to Japanese, which has no spaces)
and word 1-2-grams of the message with catalog titles and author names masked (``TitleGazetteer``), plus a dense *catalog signal*
(``TitleSimilarity``: cosine of the raw message to its nearest catalog title in char 2-4-gram TF-IDF space,
so a mistyped bare title such as "vinland sgaa" reads as a catalog request), one binary *cue* feature
per label (``INTENT_CUES``: domain vocabulary such as manager/human/責任者 for handoff) and, by default, a
multilingual sentence embedding of the masked message (``settings.router_encoder``: by default
``encoder.UseEncoder``, USE-multilingual v3, 512 dimensions; or ``encoder.SentenceEncoder``, multilingual-e5-small,
384 dimensions; centred on the training mean and re-normalised), which relates phrasings that share no
words and gives Japanese a semantic signal (test macro-F1 0.914 → 0.942, Japanese 0.767 → 0.836, before the clause_min gate below). Estimator: one
``SGDClassifier(loss="log_loss")`` per label (one-vs-rest; each score is a logistic probability in 0-1,
independent of the other labels), and, with the encoder, a one-hidden-layer ``MLPClassifier`` (256 ReLU
units, multi-label sigmoid outputs) on the dense columns (catalog signal, cues, embedding); each label's
probability is 0.7 × linear + 0.3 × MLP (dev 0.978 → 0.981, test 0.948 → 0.953, out_of_scope recall
0.965 → 0.971: the non-linear part combines embedding directions a linear model cannot). The whole message and each of its clauses (``split_clauses``) are
scored; label j is kept when its whole-message probability reaches ``thresholds[j]``, or it tops a clause
with probability ≥ ``clause_thresholds[j]`` while its whole-message probability is at least ``clause_min[j]``
(all three per label, tuned on the dev split: macro-F1 is a mean of per-label F1s, so the labels are tuned
independently); the best label is always kept. A later clause that is only a title/author mark adds no label
(``is_entity_only``: "something like X and Y"; test 0.953 → 0.956 with the bare-"also" split change). ``clause_min`` stops a fragment that the clause split cut out
of a single request ("my card was declined, I want to know why" → "I want to know why") from adding a
label the message as a whole does not support: chitchat precision 0.708 → 0.776, test macro-F1 0.942 → 0.948 (dev 0.976 → 0.978). A recommend cue
("similar", "recommend", "おすすめ"...) suppresses a search label that no clause of its own asks for
(``_decide``). The ``complex`` flag is a rule (``is_complex``): a later clause refers back to an earlier
one ("... and add volume 1 of it").

Training data: tools/backends/router_data.py (CLINC150 + Bitext mapped to our labels, plus
catalog-derived requests). The fitted model is cached as a pickle under a file name keyed by a hash
of the training inputs, ``MODEL_VERSION`` and the encoder; a fit costs 13-21 s of CPU without the encoder
(features + catalog signal about half of it, seven SGD fits 3-8 s, dev tuning ~2-3 s), plus ~3 s to build
the dataset, plus, with an encoder, the first embedding of ~34k unique training and dev texts (USE ~35 s, e5
~6 minutes on 2 cores; kept in an ``EmbeddingCache`` beside the model, so a refit embeds only new texts) and
~45 s for the MLP; loading takes about 0.3-1.3 s. Routing one message alone (the message and each clause
embedded): p50 ~8 ms, p99 ~12 ms with USE, p50 ~18 ms, p99 ~50 ms with e5, ~4-8 ms without (docs/routing.md).
"""

from __future__ import annotations

import logging
import pathlib
import pickle
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from rapidfuzz.distance import OSA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import MultiLabelBinarizer

from core.ports import INTENTS, RouterDecision
from core.settings import ROUTER_ENCODER_NAMES, RouterEncoderName, Settings
from tools.backends import router_data
from tools.backends.catalog import InMemoryCatalog, load_catalog
from tools.backends.fit_cache import dump_pickle_atomic
from tools.backends.models.artifacts import ShippedArtifacts
from tools.backends.models.encoder import EmbeddingCache, Encoder, Progress, embedding_progress, make_encoder
from tools.backends.query import LongestMatch

log = logging.getLogger(__name__)

MODEL_VERSION = "local-router-8"
"""Bump when the features, estimator or decision rule change (invalidates cached models)."""

TITLE_MARK = " qqtitleqq "
"""What a recognised catalog title is replaced with before featurisation."""

AUTHOR_MARK = " qqauthorqq "
"""What a recognised author name (romanised or Japanese) is replaced with before featurisation."""

_EN_TOKEN = re.compile(r"[a-z0-9]+")
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def common_phrases(texts: Iterable[str], max_len: int = 4) -> set[str]:
    """Every lower-cased alphanumeric token sequence of 1..``max_len`` tokens in ``texts`` ("home", "my order").

    Catalog titles equal to one of these (in the REAL CLINC150/Bitext utterances) are ordinary phrases
    and are neither masked nor indexed for the catalog signal.
    """
    common: set[str] = set()
    for t in texts:
        toks = _EN_TOKEN.findall(t.lower())
        for i in range(len(toks)):
            for j in range(i + 1, min(len(toks), i + max_len) + 1):
                common.add(" ".join(toks[i:j]))
    return common


class TitleGazetteer:
    """Finds catalog titles and author names in a message and replaces each with ``TITLE_MARK`` /
    ``AUTHOR_MARK`` (greedy, longest match first; a title wins over an author of the same span).

    Built from every catalog title, English title, synonym and Japanese title, and from every author name,
    romanised and Japanese (``CatalogItem.authors_ja``, from the Japan Media Arts Database): the catalog is the
    store's own knowledge, available at inference. English forms are matched as lower-cased alphanumeric
    token sequences (≥ 4 characters, ≤ 12 tokens; author names ≥ 2 tokens); Japanese forms (kana/kanji; titles ≥ 2 characters,
    author names ≥ 3) as substrings. A form that is also a word sequence of the REAL training utterances
    (CLINC150/Bitext: "home", "monster", "love") is ambiguous and left out, so ordinary sentences are not
    rewritten. Misspelled names are not matched here (``mask_titles`` adds one rule for a mistyped bare title).
    """

    def __init__(self, titles: Iterable[str], real_texts: Iterable[str] = (), authors: Iterable[str] = ()):
        common = common_phrases(real_texts)
        self.en: dict[str, str] = {}
        self.first: set[str] = set()
        ja: dict[str, str] = {}
        self.max_tokens = 1
        for forms, mark, ja_min in ((authors, AUTHOR_MARK, 3), (titles, TITLE_MARK, 2)):  # titles overwrite
            for form in forms:
                if not form:
                    continue
                if _JA_CHAR.search(form):
                    t = form.strip()
                    if len(t) >= ja_min:
                        ja[t] = mark
                else:
                    toks = _EN_TOKEN.findall(form.lower())
                    key = " ".join(toks)
                    min_tokens = 2 if mark is AUTHOR_MARK else 1  # one-word pen names ("Match", "Mani") are words too
                    if len(key) >= 4 and min_tokens <= len(toks) <= 12 and key not in common:
                        self.en[key] = mark
                        self.first.add(toks[0])
                        self.max_tokens = max(self.max_tokens, len(toks))
        self.ja = LongestMatch(ja)

    def mask(self, text: str) -> str:
        """``text`` with each recognised title/author replaced by its mark (pure; ~20 µs per message)."""
        if self.ja and _JA_CHAR.search(text):
            out, pos = [], 0
            for start, end, mark in self.ja.scan(text):
                out += [text[pos:start], mark]
                pos = end
            text = "".join(out) + text[pos:]
        low = text.lower()
        spans = [(m.start(), m.end(), m.group()) for m in _EN_TOKEN.finditer(low)]
        out, pos, i = [], 0, 0
        while i < len(spans):
            if spans[i][2] not in self.first:
                i += 1
                continue
            for j in range(min(len(spans), i + self.max_tokens), i, -1):
                mark = self.en.get(" ".join(s[2] for s in spans[i:j]))
                if mark:
                    out.append(text[pos:spans[i][0]])
                    out.append(mark)
                    pos = spans[j - 1][1]
                    i = j
                    break
            else:
                i += 1
        out.append(text[pos:])
        return "".join(out)

    def mask_many(self, texts: Sequence[str]) -> list[str]:
        return [self.mask(t) for t in texts]


_CLAUSE_SPLIT = re.compile(
    r"[?!;？！。]+\s*|\.+(?=\s|$)\s*|,\s*(?:and\s+)?(?:also|plus|then)\s+|\s+(?:and\s+also|and\s+then|and)\s+"
    r"|、(?=あと|それから|それと|ついでに)", re.IGNORECASE)
_BACK_REF = re.compile(r"\b(?:it|its|that one|those|them|the first one|the next one)\b|その|それ(?!と|から)|なら|たら",
                       re.IGNORECASE)
_JA_LEAD = re.compile(r"^(?:それと|ついでに|また|あと|それから)[、,]?\s*")


def split_clauses(text: str) -> list[str]:
    """Split a (title-masked) message into clauses at sentence ends and coordinators.

    English: ? ! ; anywhere, a full stop only before a space or the end (so "R.n.D", "1.5" and "Dr.Slump"
    stay whole), ", also/plus/then", " and (also/then) ". A bare " also " or " plus " is not a boundary: inside
    a clause it is an adverb ("fans of X also like what?", "I also want"); as a coordinator it comes after a
    comma or "and", as in every connector of the training combinations (data/intents/derived/connectors.csv);
    Japanese: 。！？ and 、 before あと/それから/それと/ついでに (leading connectives are dropped).
    Clauses shorter than 2 characters are dropped. A plain linguistic rule, not fitted to the data.
    """
    parts = []
    for p in _CLAUSE_SPLIT.split(text):
        p = _JA_LEAD.sub("", p.strip()).strip(" ,、")
        if len(p) >= 2:
            parts.append(p)
    return parts


_ENTITY_ONLY = re.compile(r"^(?:qqtitleqq|qqauthorqq|and|or|&|と|や|please|pls|thanks|でお願いします|お願いします|を?ください"
                          r"|[\s,、.!?！？。])*$", re.IGNORECASE)


def is_entity_only(clause: str) -> bool:
    """True when a title-masked clause holds nothing but title/author marks, coordinators and a courtesy word
    ("qqtitleqq", "qqtitleqq と qqtitleqq", "qqtitleqq please"): the second object of the previous clause's verb ("something like X and Y"),
    not a request of its own, so it must not add a label (a bare title alone reads as a search)."""
    return bool(_ENTITY_ONLY.match(clause))


def is_complex(clauses: Sequence[str]) -> bool:
    """True when a clause after the first refers back to an earlier result (it/that one/those/その/それ/なら/たら).

    The same rule that labels the derived complex examples (router_data), applied to title-masked
    clauses; on the test split it reaches precision 0.67, recall 0.92.
    """
    return len(clauses) > 1 and any(_BACK_REF.search(c) for c in clauses[1:])



_RECOMMEND_CUE = re.compile(
    r"\b(?:recommend\w*|suggest\w*|similar|something like|anything like|manga like|more like|titles like|"
    r"read next|next read|what (?:else|next)|in the style of|fans? of)\b|おすすめ|オススメ|似た|みたいな|のような|っぽい|次に読む|次は何",
    re.IGNORECASE)


def has_recommend_cue(text: str) -> bool:
    """True when ``text`` asks for suggestions in so many words ("similar", "recommend", "おすすめ", "みたいな"...)."""
    return bool(_RECOMMEND_CUE.search(text))


class TitleSimilarity:
    """The catalog signal: cosine similarity (0-1) of a message to its nearest catalog title form.

    Index: every title, English title, synonym and Japanese title of the catalog, lower-cased, as
    char_wb 2-4-gram TF-IDF vectors (sublinear tf). N-grams present in more than 1 % of the forms
    (" th", "the") are dropped, which keeps the query × title product sparse (~2 s of CPU per 30k
    messages). Forms that are ordinary phrases of the real utterances (``common_phrases``: "home",
    "love") are left out, so a common word inside a sentence does not look like a title. A bare title,
    mistyped or not ("vinland sgaa" → 0.69, "where is my order" → 0.45), scores high.
    """

    def __init__(self, titles: Iterable[str], real_texts: Iterable[str] = ()):
        common = common_phrases(real_texts)
        forms = sorted({t.strip().lower() for t in titles
                        if t and t.strip() and " ".join(_EN_TOKEN.findall(t.lower())) not in common})
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), max_df=0.01, sublinear_tf=True,
                                          dtype=np.float32)
        self.index = self.vectorizer.fit_transform(forms).T.tocsr()  # (n-grams, forms)
        self.forms = forms
        self.n_forms = len(forms)

    def nearest(self, texts: Sequence[str], chunk: int = 4096, forms: bool = True) -> tuple[np.ndarray, list[str]]:
        """Per text, the cosine (float32 0-1) to its nearest title form and, with ``forms``, that form
        (lower-cased; "" when no n-gram is shared; an empty list without ``forms``)."""
        sims = np.zeros(len(texts), dtype=np.float32)
        best: list[str] = [""] * len(texts) if forms else []
        for i in range(0, len(texts), chunk):
            S = self.vectorizer.transform([t.lower() for t in texts[i:i + chunk]]) @ self.index
            if not S.nnz:
                continue
            sims[i:i + chunk] = S.max(axis=1).toarray().ravel()
            if forms:
                for k, j in enumerate(np.asarray(S.argmax(axis=1)).ravel()):
                    if sims[i + k] > 0:
                        best[i + k] = self.forms[j]
        return sims, best

    def similarity(self, texts: Sequence[str], chunk: int = 4096) -> np.ndarray:
        """Nearest-title cosine per text, shape (len(texts),) float32 in 0-1."""
        return self.nearest(texts, chunk, forms=False)[0]


_END_PUNCT = " ?!.。？！"


def mask_titles(gazetteer: TitleGazetteer, similarity: TitleSimilarity, texts: Sequence[str]) -> list[str]:
    """``gazetteer.mask`` of each text, plus one rule for a mistyped bare title: a whole English message
    (8-60 characters without its end punctuation) in which the gazetteer found nothing, and which is one
    keyboard slip (optimal-string-alignment distance 1: a letter swapped with the next, dropped, doubled or
    replaced, as ``router_data.typo`` makes them) from its nearest catalog title form, becomes ``TITLE_MARK``.

    Why: the sentence encoder reads an unrecognised "vinland sgaa" as noise (out_of_scope), where "X"
    (a recognised title) reads as a catalog request. Only whole messages: a slip inside a sentence leaves
    the request's own wording to carry it. ~1 ms per 100 candidate messages.
    """
    masked = gazetteer.mask_many(texts)
    cand = [i for i, (t, m) in enumerate(zip(texts, masked))
            if m == t and not _JA_CHAR.search(t) and 8 <= len(t.strip(_END_PUNCT)) <= 60]
    if cand:
        bare = [texts[i].strip(_END_PUNCT).lower() for i in cand]
        _, forms = similarity.nearest(bare)
        for i, b, form in zip(cand, bare, forms):
            if form and OSA.distance(b, form, score_cutoff=1) == 1:
                masked[i] = TITLE_MARK
    return masked


INTENT_CUES: dict[str, re.Pattern] = {label: re.compile(pattern, re.IGNORECASE) for label, pattern in {
    "handoff": r"\b(?:human|humans|real person|a person|someone|somebody|agent|operator|representative|rep|manager|"
               r"supervisor|staff|employee|customer (?:service|support|care)|support team|complain\w*|escalat\w*|"
               r"call me|callback|phone)\b|人間|人と|担当|責任者|オペレーター|スタッフ|有人|苦情|クレーム|電話|上司|店長",
    "order": r"\b(?:my (?:orders?|packages?|parcels?|deliver(?:y|ies)|purchases?|books?|manga|shipments?)|"
             r"order (?:number|no|#|history|status)|(?:past|previous|recent) orders|what did i (?:order|buy)|"
             r"tracking|track|delivered|arrived|shipped|refund|invoice|receipt|charged|damaged|missing|wrong)\b|\d{6,}|"
             r"\bMA-\d{4,}|"
             r"注文|配達|届い|届か|追跡|返金|領収書|請求|破損|発送",
    "faq": r"\b(?:policy|policies|shipping (?:cost|costs|fee|fees|options|times?)|payment (?:methods?|options)|"
           r"do you (?:accept|take|ship)|gift|points|account|password|newsletter|membership|member|sign up|register|"
           r"terms)\b|送料|支払い方法|支払方法|ポリシー|規約|会員|アカウント|パスワード|ポイント|メルマガ|ギフト|海外発送",
    "chitchat": r"\b(?:hello|hi|hey|thanks|thank you|thx|bye|goodbye|good (?:morning|afternoon|evening|night)|"
                r"who are you|are you (?:a )?(?:bot|robot|human|real)|how are you|nice|cool|awesome|great job)\b|"
                r"こんにちは|ありがとう|おはよう|こんばんは|さようなら|よろしく|あなたは|お疲れ",
}.items()}
"""Domain vocabulary per label, EN and JA (written by us from the label definitions of ``core.ports.INTENTS``; an order
number is 6+ digits, or our own MA-NNNNN ids). Each is one binary feature: the model learns its weight from the training templates
that use *some* of the words and applies it to held-out phrasings that use *others* ("get me a manager" vs
"I want to talk to a human"), which character and word n-grams cannot relate. Dev/test macro-F1
0.920/0.886 → 0.946/0.911 (the lexicons were written after reading dev errors, so the test gain may be a
little optimistic)."""


def cue_features(texts: Sequence[str]) -> sp.csr_matrix:
    """(len(texts), len(INTENT_CUES)) float32 0/1: whether each text contains each label's cue vocabulary."""
    rows = [[1.0 if pat.search(t) else 0.0 for pat in INTENT_CUES.values()] for t in texts]
    return sp.csr_matrix(np.asarray(rows, dtype=np.float32).reshape(len(texts), len(INTENT_CUES)))


def _dense(sim: np.ndarray, texts: Sequence[str]) -> sp.csr_matrix:
    """Dense columns appended to the sparse TF-IDF rows: the catalog signal [s, 2·max(0, s − 0.5)] with s = sim
    for short messages (≤ 5 words, or ≤ 20 characters of Japanese) and 0 otherwise — a bare, possibly
    mistyped title is short; in longer sentences the signal mostly fired on ordinary words (dev ablation) —
    then the ``cue_features`` of the raw text."""
    short = np.array([len(t.split()) <= 5 and (not _JA_CHAR.search(t) or len(t) <= 20) for t in texts],
                     dtype=np.float32)
    s = sim * short
    catalog = sp.csr_matrix(np.column_stack([s, 2.0 * np.maximum(0.0, s - 0.5)]).astype(np.float32))
    return sp.hstack([catalog, cue_features(texts)], format="csr")


def encoder_text(masked: str) -> str:
    """What the sentence encoder reads for a title-masked text: each title mark becomes "X" and each author
    mark "Y" (a placeholder the model reads as a name, where "qqtitleqq" would be noise), spaces collapsed."""
    return " ".join(masked.replace(TITLE_MARK, " X ").replace(AUTHOR_MARK, " Y ").split())


THRESHOLD_GRID = tuple(round(float(x), 2) for x in np.arange(0.10, 0.96, 0.05))
CLAUSE_MIN_GRID = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2)
"""Candidate whole-message minimum probabilities for a label a clause asks for (log-spaced; 0 = no minimum)."""


def _features(char_max: int = 150_000) -> FeatureUnion:
    return FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True,
                                 max_features=char_max, dtype=np.float32)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                 token_pattern=r"(?u)\b\w+\b", dtype=np.float32)),
    ])


@dataclass
class _Scored:
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


def _keep(sc: _Scored, thresholds: np.ndarray, clause_thresholds: np.ndarray, cue_rule: bool = True,
          clause_min: np.ndarray | float = 0.0) -> np.ndarray:
    """Boolean (n, 7): the labels each message carries (see the module docstring for the rule).

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


def _expit(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-z), elementwise (what the log-loss SGD models and the MLP's multi-label
    output apply to their scores)."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def _f1_per_label(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Binary F1 per column of two boolean (n, 7) matrices (0 when a label has no gold and no predictions)."""
    tp = (pred & gold).sum(axis=0)
    fp = (pred & ~gold).sum(axis=0)
    fn = (~pred & gold).sum(axis=0)
    return 2 * tp / np.maximum(2 * tp + fp + fn, 1)


def tune_thresholds(sc: _Scored, gold: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID,
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
                f = _f1_per_label(gold, _keep(sc, a, b, cue_rule, m))
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


class LocalRouter:
    """Multi-label intent router (implements ``core.ports.Router``) over the seven intent labels (``core.ports.INTENTS``).

    Pipeline per message: catalog titles are masked (``TitleGazetteer``), the catalog signal is computed
    on the raw text (``TitleSimilarity``), the whole message and each of its clauses (``split_clauses``)
    are scored by seven one-vs-rest SGD logistic models, and labels are kept by ``_keep`` with per-label
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

    # ---- training and caching --------------------------------------------------------------

    @classmethod
    def train(cls, dataset: router_data.RouterDataset, catalog: InMemoryCatalog | None = None,
              alpha: float = 1e-5, epochs: int = 15, cue_rule: bool = True, use_similarity: bool = True,
              char_max: int = 150_000, seed: int = 0, encoder: Encoder | None = None,
              encoder_weight: float = 1.0, embedding_cache: EmbeddingCache | None = None,
              progress: Progress | None = None, mlp_mix: float = 0.7, mlp_hidden: int = 256) -> LocalRouter:
        """Fit on ``dataset.train``; tune per-label thresholds on ``dataset.dev`` (if any) by F1.

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
        (module docstring). alpha 1e-5, weight 1.0 and mlp_mix 0.7 were chosen on dev macro-F1 (weights
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
        features = _features(char_max)
        X = features.fit_transform(texts)
        router = cls(gazetteer, similarity, features, [], cue_rule=cue_rule, use_similarity=use_similarity,
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

    @staticmethod
    def cache_key(encoder: RouterEncoderName = "use") -> str:
        """First 16 hex chars of SHA-256 over the training inputs, this module's source, MODEL_VERSION and the
        encoder's model name. Raises ValueError for an unknown encoder name."""
        model = make_encoder(encoder)
        tag = MODEL_VERSION + (model.name if model is not None else "lexical")
        return router_data.data_fingerprint(tag + pathlib.Path(__file__).read_text(encoding="utf-8"))[:16]

    @classmethod
    def cache_path(cls, cache_dir: pathlib.Path, encoder: RouterEncoderName = "use") -> pathlib.Path:
        """``<cache_dir>/local_router-<cache_key>.pkl``: where ``load_or_train`` keeps the fitted router.

        A plain pickle (protocol 5, ~14 MB): the C unpickler loads it in ~0.1 s, where ``joblib.load`` (a
        Python-level unpickler) took ~1.3 s, most of a later start."""
        return pathlib.Path(cache_dir) / f"local_router-{cls.cache_key(encoder)}.pkl"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRouter:
        """``load_or_train(settings.model_dir, settings.router_encoder)``: the router every caller uses."""
        return cls.load_or_train(settings.model_dir, settings.router_encoder)

    @classmethod
    def load_or_train(cls, cache_dir: pathlib.Path, encoder: RouterEncoderName = "use",
                      shipped: ShippedArtifacts | None = None) -> LocalRouter:
        """Load ``<cache_dir>/local_router-<cache_key>.pkl``, else the router shipped in ``shipped`` (data/models,
        built by ``mangaassist train``) when its key, encoder and scikit-learn minor version match; if neither
        fits, build the dataset, train and save atomically into ``cache_dir``.

        ``cache_dir`` is normally ``core.settings.get_settings().model_dir`` (shared by runs and tests, so a
        clean machine trains once). ``encoder`` is ``settings.router_encoder``: "use" (default) or "e5" (the
        first fit embeds the training texts, ~2-3 minutes on 2 cores with USE, ~7 with e5, with a progress bar on
        a terminal and a log line per 10 % otherwise) or "none". Older cached versions in ``cache_dir`` are left in place (a few MB each).
        Raises ValueError for another encoder name.
        """
        if encoder not in ROUTER_ENCODER_NAMES:
            raise ValueError(f"unknown router encoder {encoder!r}; expected one of {ROUTER_ENCODER_NAMES}")
        cache_dir = pathlib.Path(cache_dir)
        path = cls.cache_path(cache_dir, encoder)
        shipped = shipped or ShippedArtifacts()
        candidates = (lambda: path, lambda: shipped.router_path(cls.cache_key(encoder), encoder))
        for candidate in (find() for find in candidates):
            if candidate is not None and candidate.exists():
                with candidate.open("rb") as fh:  # our own files only: the user's cache or data/models (hash-checked)
                    obj = pickle.load(fh)
                if isinstance(obj, cls):
                    return obj
        model = make_encoder(encoder)
        if model is not None:
            embeddings = EmbeddingCache(cache_dir, model_name=model.name)
            with embedding_progress("Training the router: embedding the training utterances (once)",
                                    seconds_per_text=0.001 if encoder == "use" else 0.009) as progress:
                router = cls.train(router_data.build_dataset(), encoder=model,
                                   embedding_cache=embeddings, progress=progress)
            embeddings.save()
        else:
            router = cls.train(router_data.build_dataset())
        dump_pickle_atomic(router, path)
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
            parts.append(_dense(self.similarity.similarity(raw), raw).toarray())
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

    def _score(self, texts: Sequence[str]) -> _Scored:
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
        return _Scored(probs, clause_top, clause_top_plain, cue, [is_complex(c) for c in clauses])

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
        keep = _keep(sc, self.thresholds, self.clause_thresholds, self.cue_rule, self.clause_min)
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
