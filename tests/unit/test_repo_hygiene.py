"""Comments, docstrings and docs cite only what is in the repository, and never name people."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = re.compile(r"DESIGN\.md|\bDESIGN example\b|\bEngineer [A-Z]\b")


def _sources() -> list[Path]:
    skip = {".git", "node_modules", ".venv", "build", "dist"}
    return [p for ext in ("*.py", "*.md") for p in ROOT.rglob(ext)
            if not skip & set(p.relative_to(ROOT).parts) and p != Path(__file__).resolve()]


def test_no_source_or_doc_cites_design_md_or_names_an_engineer():
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in _sources()
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if FORBIDDEN.search(line)]
    assert hits == []
