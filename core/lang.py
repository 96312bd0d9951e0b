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
