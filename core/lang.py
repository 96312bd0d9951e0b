"""Language detection for the two languages the store serves (Japanese, English)."""

from __future__ import annotations

import re
from typing import Literal

Locale = Literal["en", "ja"]

_JA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def detect_locale(text: str) -> Locale:
    """Return ``"ja"`` when the text contains kana or kanji (CJK ideographs), else ``"en"``.

    A single Japanese character is enough: customers often mix romaji titles into Japanese sentences
    and expect a Japanese answer.
    """
    return "ja" if _JA.search(text or "") else "en"


_YES = re.compile(
    r"^\s*(?:(?:y|yes|yeah|yep|sure|ok|okay|confirm|confirmed|i confirm|please do|go ahead|do it|cancel it|return it)\b|"
    r"(?:はい(?![りっ])|ええ|うん|お願い|おねがい|確定|大丈夫(?!じゃ|ではな|でもな)|オーケー|いいよ|いいです|それで(?:お願い|いい|OK)|"
    r"(?:キャンセル|返品)(?:して|で(?:お願い|いい))))",
    re.IGNORECASE,
)
"""A yes at the start of a reply. English words end at a word boundary; Japanese ones need none (Python's ``\b`` sees
no boundary between 確定 and で, so "確定で" was unclear)."""
_NO = re.compile(
    r"^\s*(?:(?:hmm+|um+|uh+|er+m?|oh|ah|wait|actually|on second thought|うーん|うーむ|えっと|あ|いや待って|ちょっと待って|今回は|今は)[,、.…!\s]*)*"
    r"(?:やっぱり|やっぱ|やはり)?[、,\s]*"
    r"(?:(?:n|no|nope|nah|don'?t|do not|stop|cancel that|never ?mind|not (?:now|yet)|keep (?:it|the order|that))\b|"
    r"いいえ|いや|やめ|結構です|けっこうです|キャンセルしない|しない|不要|そのままで)",
    re.IGNORECASE,
)
"""A no at the start of a reply, after any filler ("hmm wait actually no, keep the order", "うーん、やっぱりやめます").
English words end at a word boundary ("nice" is no "n")."""


def parse_confirmation(text: str | bool | None) -> bool | None:
    """Interpret a customer's answer to a confirmation prompt: True (yes), False (no), None (unclear).

    Accepts booleans (API clients) and English/Japanese words ("yes", "ok", "はい", "お願いします";
    "no", "いいえ", "やめて"). "no" wins when both appear at the start.
    """
    if isinstance(text, bool):
        return text
    if not isinstance(text, str):
        return None
    t = text.strip().strip("!.。！、, ")
    if _NO.match(t):
        return False
    if _YES.match(t):
        return True
    return None
