"""The "why" of a recommendation: the short English / Japanese explanation texts of a pick.

``HybridRecommender.recommend`` stores the English text as ``Recommendation.reason`` and
``HybridRecommender.explain`` gives either language; both pass what the fitted model knows (the liked titles a
pick comes from, whether the ratings link them) to ``explain_text``.
"""

from __future__ import annotations

from typing import Sequence

from core.domain import CatalogItem
from tools.backends.recommender.vocabulary import item_tags, tag_label


def explain_text(item: CatalogItem, sources: Sequence[CatalogItem], co_liked: bool, wanted: Sequence[str], ja: bool) -> str:
    """Explanation text (see ``HybridRecommender.explain``) from the pick, its liked source titles, whether the
    ratings link them (``co_liked``) and the tags stated in the request.

    Args:
        item: The recommended title.
        sources: The liked history titles the pick comes from (at most two), best contributor first.
        co_liked: True when readers who rated a source highly also rated ``item`` highly (the ratings link them).
        wanted: Catalog tags stated in the request (``parse_liked_text(...)[0]``), in order of mention.
        ja: Japanese text when True, else English.

    Returns:
        One or two sentences naming the sources and up to three shared tags (stated ones first), or the matched
        stated tags, or "popular with readers of <genre>" when there is neither.
    """
    tags = item_tags(item)
    if sources:
        shared = [t for t in tags if any(t in item_tags(s) for s in sources)]
        shared = ([t for t in shared if t in wanted] + [t for t in shared if t not in wanted])[:3]
        titles = [display_title(s, ja) for s in sources]
        asked = [t for t in wanted if t in tags and t not in shared]
        if ja:
            names = "、".join(f"『{t}』" for t in titles)
            text = f"{names}が好きな方に"
            if co_liked:
                text += f"（{names}を高く評価した読者がこの作品も高く評価しています）"
            if shared:
                text += f"。共通のジャンル：{'・'.join(tag_label(t, 'ja') for t in shared)}"
            if asked:
                text += f"。ご希望の{'・'.join(tag_label(t, 'ja') for t in asked)}にも当てはまります"
            return text + "。"
        names = " and ".join(titles)
        text = f"For readers who like {names}"  # what the customer named or rated, never a claim they said so
        if co_liked:
            text += f": readers who rated {names} highly also rated this highly"
        if shared:
            text += ("; " if co_liked else ": ") + "shares " + ", ".join(shared)
        if asked:
            text += f"; matches what you asked for ({', '.join(asked)})"
        return text + "."
    matched = [t for t in wanted if t in tags]
    if matched:
        if ja:
            return f"ご希望の{'・'.join(tag_label(t, 'ja') for t in matched)}に当てはまる、{tag_label(matched[0], 'ja')}の読者に人気の作品です。"
        return f"Matches what you asked for ({', '.join(matched)}); popular with readers of {matched[0]}."
    genre = (item.genres or item.themes or ((item.demographic,) if item.demographic else ("manga",)))[0]
    if ja:
        return f"{tag_label(genre, 'ja')}の読者に人気の作品です。"
    return f"Popular with readers of {genre}."


def display_title(item: CatalogItem, ja: bool) -> str:
    """Display title: the native Japanese title in Japanese answers (not for manhwa/manhua), else the MAL title.

    Args:
        item: The catalog title to name.
        ja: Whether the answer is in Japanese.

    Returns:
        ``item.title_ja`` when ``ja`` and the title has one (and is not a manhwa/manhua), else ``item.title``.
    """
    if ja and item.title_ja and item.media_type.lower() not in ("manhwa", "manhua"):
        return item.title_ja
    return item.title
