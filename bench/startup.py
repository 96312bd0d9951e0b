"""Start-up benchmark: wall time of ``mangaassist chat "hi"`` from a fresh model directory and on later starts.

Each run is a new process (what a user waits for: imports, loading the shipped router, building or loading the
search index and recommender, one turn). The first run gets an empty ``MANGAASSIST_MODEL_DIR`` (a fresh install:
the index is built from the shipped title embeddings and cached); the later runs reuse that directory. Every run
has its own empty ``MANGAASSIST_DATA_DIR`` (a new SQLite database). Prints median, p90 and max of the later starts
and the ``open_deps`` stage timings (ms) the last run logged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

_DEPS = re.compile(r"deps ready in ms: (\{.*\})")


def _one(model_dir: Path, message: str) -> tuple[float, dict[str, float]]:
    exe = shutil.which("mangaassist")
    if exe is None:
        raise RuntimeError("the `mangaassist` console script is not installed (pip install -e .)")
    with tempfile.TemporaryDirectory(prefix="ma-startup-data-") as data_dir:
        env = {**os.environ, "MANGAASSIST_MODEL_DIR": str(model_dir), "MANGAASSIST_DATA_DIR": data_dir,
               "MANGAASSIST_LOG_LEVEL": "INFO"}
        for name in ("DATABASE_URL", "REDIS_URL", "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL"):
            env.pop(name, None)
        t = time.perf_counter()
        out = subprocess.run([exe, "chat", message, "--json"], env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"mangaassist chat failed ({out.returncode}): {out.stderr[-2000:]}")
    json.loads(out.stdout.strip().splitlines()[-1])  # one JSON turn, or this raises
    m = _DEPS.search(out.stderr)
    stages = json.loads(m.group(1).replace("'", '"')) if m else {}
    return wall, stages


def run_startup_bench(runs: int = 5, message: str = "hi") -> dict:
    """First start (empty model dir) then ``runs`` later starts; returns seconds and the last run's stages (ms).

    Keys: ``first_s``, ``later_s`` (list), ``later_median_s``, ``later_p90_s``, ``later_max_s``, ``stages_ms``.
    Raises RuntimeError when a run fails. Expect ~5-40 s for the first start and a few seconds for each later one
    on 2 cores; the figures move with machine load, so compare runs made in one sitting.
    """
    with tempfile.TemporaryDirectory(prefix="ma-startup-models-") as model_dir:
        first, _ = _one(Path(model_dir), message)
        later, stages = [], {}
        for _ in range(runs):
            wall, stages = _one(Path(model_dir), message)
            later.append(wall)
    ordered = sorted(later)
    return {"first_s": round(first, 2), "later_s": [round(x, 2) for x in later],
            "later_median_s": round(statistics.median(later), 2),
            "later_p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
            "later_max_s": round(ordered[-1], 2), "stages_ms": stages}
