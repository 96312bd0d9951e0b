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
(``is_entity_only``: "something like X and Y"; test 0.953 → 0.956 with the bare-"also" split change).
``clause_min`` stops a fragment that the clause split cut out of a single request ("my card was declined, I want
to know why" → "I want to know why") from adding a label the message as a whole does not support: chitchat
precision 0.708 → 0.776, test macro-F1 0.942 → 0.948 (dev 0.976 → 0.978). A recommend cue
("similar", "recommend", "おすすめ"...) suppresses a search label that no clause of its own asks for
(``training.keep_labels``). The ``complex`` flag is a rule (``is_complex``): a later clause refers back to an earlier
one ("... and add volume 1 of it").

Training data: tools/backends/router_data.py (CLINC150 + Bitext mapped to our labels, plus
catalog-derived requests). The fitted model is cached as a pickle under a file name keyed by a hash
of the training inputs, the package's source, ``MODEL_VERSION`` and the encoder; a fit costs 13-21 s of CPU without the encoder
(features + catalog signal about half of it, seven SGD fits 3-8 s, dev tuning ~2-3 s), plus ~3 s to build
the dataset, plus, with an encoder, the first embedding of ~34k unique training and dev texts (USE ~35 s, e5
~6 minutes on 2 cores; kept in an ``EmbeddingCache`` beside the model, so a refit embeds only new texts) and
~45 s for the MLP; loading takes about 0.3-1.3 s. Routing one message alone (the message and each clause
embedded): p50 ~8 ms, p99 ~12 ms with USE, p50 ~18 ms, p99 ~50 ms with e5, ~4-8 ms without (docs/routing.md).

The package has one module per role, each importing only those before it: ``features`` (text features, the sentence
encoder's input, lexical cues), ``training`` (the fit, the threshold rule and its tuning, the cache key and the
cache/shipped-model load-or-train path) and ``inference`` (``LocalRouter``, routing at run time). The names
below are re-exported so callers import them from ``tools.backends.models.local_router``.
"""

from tools.backends.models.local_router.features import (
    AUTHOR_MARK,
    INTENT_CUES,
    TITLE_MARK,
    TitleGazetteer,
    TitleSimilarity,
    common_phrases,
    cue_features,
    dense_features,
    encoder_text,
    has_recommend_cue,
    is_complex,
    is_entity_only,
    make_features,
    mask_titles,
    split_clauses,
)
from tools.backends.models.local_router.inference import LocalRouter
from tools.backends.models.local_router.training import (
    CLAUSE_MIN_GRID,
    MODEL_VERSION,
    THRESHOLD_GRID,
    Scored,
    TrainReport,
    cache_key,
    keep_labels,
    load_or_train,
    package_source,
    tune_thresholds,
)

__all__ = [
    "AUTHOR_MARK",
    "CLAUSE_MIN_GRID",
    "INTENT_CUES",
    "MODEL_VERSION",
    "THRESHOLD_GRID",
    "TITLE_MARK",
    "LocalRouter",
    "Scored",
    "TitleGazetteer",
    "TitleSimilarity",
    "TrainReport",
    "cache_key",
    "common_phrases",
    "cue_features",
    "dense_features",
    "encoder_text",
    "has_recommend_cue",
    "is_complex",
    "is_entity_only",
    "keep_labels",
    "load_or_train",
    "make_features",
    "mask_titles",
    "package_source",
    "split_clauses",
    "tune_thresholds",
]
