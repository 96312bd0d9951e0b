"""The pytest configuration: every marker the suite uses is registered, and an unregistered one fails."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def _ini() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def test_every_marker_used_in_the_suite_is_registered_in_pyproject():
    registered = {m.split(":")[0].strip() for m in _ini()["markers"]}
    used = {m for p in (ROOT / "tests").rglob("*.py") for m in re.findall(r"pytest\.mark\.(\w+)", p.read_text())}
    assert "faults" in used
    assert used - BUILTIN <= registered, sorted(used - BUILTIN - registered)


def test_strict_markers_is_on():
    addopts = _ini().get("addopts", "")
    assert "--strict-markers" in (shlex.split(addopts) if isinstance(addopts, str) else addopts)


def test_an_unregistered_marker_fails_collection(tmp_path):
    test = tmp_path / "test_typo.py"
    test.write_text("import pytest\n\n\n@pytest" ".mark.fualts\ndef test_x():\n    pass\n")  # split: not a use
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
                          "--rootdir", str(tmp_path), str(test)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "'fualts' not found in `markers`" in run.stdout, run.stdout[-2000:]
