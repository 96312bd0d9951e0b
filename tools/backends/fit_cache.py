"""A pickle cache for fitted read-only models (the recommender): keyed by a hash of everything the fit reads."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Callable, Iterable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def fingerprint(parts: Iterable[str | bytes | Path]) -> str:
    """First 24 hex chars of SHA-256 over ``parts`` in order: a Path contributes its file's bytes, a str its UTF-8
    text, bytes themselves (each part length-prefixed, so two splits of the same bytes differ)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:24]


def load_or_fit(cache_dir: Path | None, name: str, parts: Iterable[str | bytes | Path], fit: Callable[[], T]) -> T:
    """``fit()``, pickled to ``<cache_dir>/<name>-<fingerprint(parts)>.pkl`` and loaded from there by later calls.

    ``parts`` must name everything the fit depends on (input files, the fitting module's source, parameters).
    Without ``cache_dir`` it just fits. Only files this function wrote are unpickled (the cache directory is the
    user's own); an unreadable file is logged and refitted. Written atomically (temp file + rename).
    """
    if cache_dir is None:
        return fit()
    path = Path(cache_dir) / f"{name}-{fingerprint(parts)}.pkl"
    if path.exists():
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # a cache only: refit rather than fail the start
            log.warning("ignoring unreadable cache %s: %s", path, exc)
    obj = fit()
    dump_pickle_atomic(obj, path)
    return obj


def dump_pickle_atomic(obj: object, path: Path) -> None:
    """Pickle ``obj`` (highest protocol) to ``path`` through a temp file in the same directory and a rename, so a
    reader never sees half a file; the directory is created, the file is world-readable (0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
