"""Hybrid manga recommender: EASE collaborative filtering + content similarity + era + popularity priors, fused linearly.

Sources and algorithms
- Collaborative signal: MyAnimeList review scores (data/ratings/manga_review_scores.csv.gz, users hashed).
  Scoring uses EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): on the binary user x item "reviewed"
  matrix X (any score: writing a review is the implicit signal), ``P = (X^T X + lambda I)^-1`` and
  ``B = I - P diag(1/diag(P))`` (zero diagonal); a reader's score is ``x B``. Only titles co-reviewed with
  another title take part (others have an all-zero column), ~3.4k titles, so the Cholesky inverse takes ~1 s.
  Alone it doubles the hit-rate of the item-item cosine it replaced (dev: 0.044 vs 0.024).
  The "liked" co-occurrence (score >= 7) shrunk cosine ``s_ij = c_ij / sqrt(n_i * n_j) * c_ij / (c_ij + shrinkage)``
  (Sarwar et al. 2001) is kept for explanations ("readers who rated X highly also rated this") and ``co_count``.
- Content similarity: TF-IDF (scikit-learn) over catalog tags (genres + themes + demographic) and authors,
  blended per block and L2-normalised; a profile of the liked titles is scored by cosine. A synopsis TF-IDF
  block exists (``ModelParams.synopsis_weight``) but is off by default: it did not help on the dev split
  and made queries ~5x slower.
- Stated likes (``liked_text``): a bilingual (English / Japanese) keyword map onto the catalog's genres,
  themes and demographics (``TAGS``); items score by the share of stated tags they carry.
- Era: reviewers read (and review) titles of the same publication period; ``era`` is the mean over the history
  of a Gaussian kernel ``exp(-((year_i - year_h) / sigma)^2)`` on start years (``published``), sigma 3 years.
- Popularity priors: log MyAnimeList members (min-max scaled to [0, 1]), log review count in the training
  ratings (scaled by its maximum) and MAL mean score (``quality``: (score - 6) / 3.5 clipped to [0, 1]).
The CF and content signals are scaled to [0, 1] per query (divided by their maximum), the others are already
in [0, 1]; the weighted sum ranks the catalog. The default weights were tuned on the dev split of
``bench/eval_recommend.py`` averaged over three hidden-title draws (``tune_weights``).

Layout (one role per module; ``explanations`` and ``model`` import ``vocabulary``, ``model`` imports
``explanations``, nothing imports this package's ``__init__`` from inside it):

- ``vocabulary``: the bilingual tag map and liked-text parser, item tags, the review ratings (``load_ratings``).
- ``model``: fitting (``HybridRecommender.build``, ``fit_ease``) and scoring (``signals``, ``fuse``, ``recommend``).
- ``explanations``: the English / Japanese "why" texts of a pick (``explain_text``).

The fitted model's cache key (``tools.backends.factory.shared_recommender``) hashes every module of this
package, sorted by name.
"""

from tools.backends.recommender.explanations import display_title, explain_text
from tools.backends.recommender.model import FusionWeights, HybridRecommender, ModelParams, fit_ease, start_year
from tools.backends.recommender.vocabulary import (
    DEFAULT_RATINGS,
    LIKED_SCORE,
    PHRASES,
    TAGS,
    Rating,
    item_tags,
    load_ratings,
    parse_liked_text,
    tag_label,
)

__all__ = [
    "DEFAULT_RATINGS",
    "LIKED_SCORE",
    "PHRASES",
    "TAGS",
    "FusionWeights",
    "HybridRecommender",
    "ModelParams",
    "Rating",
    "display_title",
    "explain_text",
    "fit_ease",
    "item_tags",
    "load_ratings",
    "parse_liked_text",
    "start_year",
    "tag_label",
]
