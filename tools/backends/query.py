"""Catalog query parsing and text normalisation: volume markers, NFKC/case folding, romaji long-vowel folding."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator, Mapping

__all__ = ["LongestMatch", "ParsedQuery", "parse_query", "normalize"]


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A search query with its volume marker removed.

    ``text`` is the remaining query (NFKC-folded and stripped; case and script kept); ``volume`` the
    requested volume number (1-999) or None when the query names no volume.
    """

    text: str
    volume: int | None


# Applied after NFKC, so full-width digits (３) and signs (＃) are already ASCII.
_VOLUME_PATTERNS = (
    # 第3巻 / 3巻 / 3 巻 / 3冊目, with the possessive の before it ("ブリーチの3巻" → "ブリーチ")
    re.compile(r"(?:の\s*)?第?\s*(\d{1,3})\s*(?:巻|冊目)"),
    # vol 3 / vol. 3 / vol.3 / volume 3 / v3 / v.3 / #3  (a whole token, not inside a word)
    re.compile(r"(?<![\w#])(?:volumes?|vols?\.?|v\.?|#)\s*(\d{1,3})(?!\w)", re.IGNORECASE),
)


def parse_query(text: str | None) -> ParsedQuery:
    """Split a customer query into the title part and a volume number.

    Recognised markers (anywhere in the query, the last one wins): "vol 3", "vol. 3", "vol.3",
    "volume 3", "v3", "#3", "3巻", "第3巻", "３巻", "の3巻" (full-width digits are NFKC-folded). The marker
    is removed only when some title text remains, so a title that *is* a marker ("#1") still
    searches as itself. Never raises: ``None`` or blank input gives ``ParsedQuery("", None)``.
    """
    if not text:
        return ParsedQuery("", None)
    folded = unicodedata.normalize("NFKC", str(text))
    matches = [m for pattern in _VOLUME_PATTERNS for m in pattern.finditer(folded)]
    # The last marker wins: titles may contain a number ("Vol. 2 ..."), the customer's marker follows.
    for m in sorted(matches, key=lambda m: m.start(), reverse=True):
        rest = (folded[: m.start()] + " " + folded[m.end():]).strip(" \t,-:;/")
        rest = re.sub(r"\s{2,}", " ", rest)
        volume = int(m.group(1))
        if rest and 1 <= volume <= 999:
            return ParsedQuery(rest, volume)
    return ParsedQuery(folded.strip(), None)


_NON_WORD = re.compile(r"[\W_]+")
# Romaji long vowels: Kentarou / Kentaroo / Kentarō / Kentaro all fold to "kentaro";
# shounen / shōnen / shonen → "shonen"; yuusha / yūsha → "yusha".
_LONG_VOWELS = re.compile(r"ou|oo|uu|aa|ii|ee")
_HIRAGANA_TO_KATAKANA = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)}


def _strip_latin_marks(text: str) -> str:
    """Remove diacritics from Latin letters only (ō→o, é→e); kana voicing marks are left alone."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if 0xC0 <= ord(ch) < 0x250:
            out.append("".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out)


def normalize(text: str | None) -> str:
    """Matching form of a title, name or query (used on both the index side and the query side).

    Steps: NFKC (full-width → ASCII, half-width kana → full-width), case-fold, Latin diacritics
    removed, hiragana folded to katakana, punctuation/underscores → one space, romaji long vowels
    folded (ou/oo/uu/aa/ii/ee → single vowel, so "Kentarou" == "Kentarō" == "Kentaro").
    Returns "" for None or text with no letters or digits.
    """
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", str(text)).casefold()
    t = _strip_latin_marks(t)
    t = t.translate(_HIRAGANA_TO_KATAKANA)
    t = _NON_WORD.sub(" ", t).strip()
    return _LONG_VOWELS.sub(lambda m: m.group(0)[0], t)


class LongestMatch:
    """Known phrases found in text without word boundaries (Japanese): greedy, left to right, longest first.

    ``forms`` maps each phrase (≥ 2 characters; shorter ones are ignored) to the value reported for it
    (a mask token, or the phrase itself). Phrases are bucketed by their first two characters, so a scan
    costs one dict lookup per position plus a ``startswith`` per candidate sharing that prefix. Used by the
    router's gazetteer (titles and author names replaced by marks) and by the search index (Japanese author
    names cut out of a query). Pure and picklable.
    """

    def __init__(self, forms: Mapping[str, str]):
        self._by_prefix: dict[str, dict[str, str]] = {}
        for form, value in forms.items():
            if len(form) >= 2:
                self._by_prefix.setdefault(form[:2], {})[form] = value

    def __bool__(self) -> bool:
        return bool(self._by_prefix)

    def scan(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, value) of each match in ``text``, non-overlapping, in order (end is exclusive)."""
        i = 0
        while i < len(text) - 1:
            cands = self._by_prefix.get(text[i:i + 2])
            hit = max((c for c in cands if text.startswith(c, i)), key=len, default="") if cands else ""
            if hit:
                yield i, i + len(hit), cands[hit]
                i += len(hit)
            else:
                i += 1
