"""docs/search_backends.md describes the search settings as core/settings.py defines them."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings, env_var_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "search_backends.md"
SEARCH_FIELDS = ("search_backend", "search_encoder", "search_dense_weight", "opensearch_url", "opensearch_index",
                 "opensearch_max_retries")


def _table() -> dict[str, str]:
    """``{env variable: default as written}`` from the doc's settings table rows ``| `VAR` | `default` | ...``."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(rows)


def test_doc_lists_every_search_setting_with_its_real_variable_and_default():
    table = _table()
    for name in SEARCH_FIELDS:
        default = Settings.model_fields[name].default
        var = env_var_names(name)[0]
        assert var in table, f"{var} missing from docs/search_backends.md"
        assert table[var] == ("unset" if default is None else str(default)), var


def test_doc_does_not_call_wired_settings_proposed():
    assert "proposed" not in DOC.read_text(encoding="utf-8").lower()
