"""The installed project works from outside the repository: every top-level package is installed.

`python -m cli.main` from the repo root puts the root on sys.path and hides a package missing from
pyproject's package list (bench/ once was: `mangaassist eval routing` failed with ModuleNotFoundError
when run from any other directory).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def test_the_repo_has_the_expected_top_level_packages():
    assert {"core", "tools", "nodes", "graphs", "server", "cli", "bench"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_outside_the_repo(tmp_path, package):
    out = subprocess.run([sys.executable, "-c", f"import {package}; print({package}.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{package} is not installed (pyproject packages.find?): {out.stderr[-500:]}"
    assert Path(out.stdout.strip()).resolve().is_relative_to(ROOT)


def test_console_script_runs_outside_the_repo(tmp_path):
    exe = shutil.which("mangaassist")
    if exe is None:
        pytest.fail("the `mangaassist` console script is not installed (pip install -e .)")
    out = subprocess.run([exe, "eval", "routing", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Usage" in out.stdout
