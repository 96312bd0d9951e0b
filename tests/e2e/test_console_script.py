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


def test_cart_checkout_from_the_cli_places_one_order(tmp_path):
    import json
    import os

    env = {**os.environ, "HOME": str(tmp_path), "MANGAASSIST_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)

    def chat(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "cli.main", "chat", *args, "--user", "u_ben", "--json"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    added = chat("add 2 copies of Monster volume 1 to my cart")
    assert "Added Monster vol 1" in added["answer"], added["answer"]
    asked = chat("check out", "--thread", added["thread_id"])
    assert asked["interrupt"]["action"] == "checkout" and "2 × Monster vol 1" in asked["interrupt"]["prompt"]
    done = chat("yes", "--thread", added["thread_id"])
    order_id = done["answer"].split()[1]
    orders = subprocess.run([sys.executable, "-m", "cli.main", "orders", "--user", "u_ben", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    placed = [o for o in json.loads(orders.stdout) if o["order_id"] == order_id]
    from tools.backends.catalog import load_catalog

    price = load_catalog().get(1).price_jpy  # Monster
    assert len(placed) == 1 and placed[0]["status"] == "processing" and placed[0]["total_jpy"] == 2 * price
