"""Labelled router utterances: real CLINC150/Bitext mapped to our seven intents plus catalog-derived requests, split train/dev/test.

Sources (see data/intents/derived/README.md):

* **Real** — CLINC150 (``data/intents/clinc150_train_val.csv.gz``) and the Bitext customer-support
  sample (``data/intents/bitext_customer_support.csv.gz``); every source intent is mapped to one of
  our labels by ``data/intents/intent_mapping.csv`` (``source,source_intent,label,reason``).
* **Derived** — search/recommend requests filled from REAL catalog titles, authors and genres
  (``tools.backends.catalog.load_catalog()``) into templates (``data/intents/derived/templates.csv``),
  a few Japanese templates for the other labels (no Japanese labelled set exists), and multi-intent
  combinations of two utterances of different labels joined by a connector
  (``data/intents/derived/connectors.csv``).

Splits are deterministic (CRC32 of stable keys, a seeded RNG):

* CLINC ``train``/``oos_train`` → train, except 1 in 10 (by CRC32 of the text) → dev;
  CLINC ``val``/``oos_val`` → test.
* Bitext: CRC32 of the lower-cased instruction: 7/10 train, 1/10 dev, 2/10 test.
* Derived: templates are split per (label, lang, kind) group (about 1 in 7 test, 1 in 7 dev) and
  titles/authors are split by CRC32 of their normalised name (7/10 train, 1/10 dev, 2/10 test);
  a dev/test title whose surface form equals any train surface form is dropped. Test utterances
  therefore never share a template or a title with train.

The ``complex`` flag (the planner's training signal) follows one rule: a combination is complex
when its second part is a *dependent* template (kind ``dependent``) — it refers back to the first
part's result ("add volume 1 of **it** to my cart", "**その**1巻をカートに入れて") or is conditional
on it ("**if** it has been delivered, start a return"). Everything else is not complex.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from core.lang import detect_locale
from core.ports import INTENTS
from core.settings import PROJECT_ROOT
from tools.backends.catalog import DEFAULT_AUTHORS_JA, DEFAULT_CATALOG, InMemoryCatalog, load_catalog

Split = Literal["train", "dev", "test"]
SPLITS: tuple[str, ...] = ("train", "dev", "test")

INTENTS_DIR = PROJECT_ROOT / "data" / "intents"
DERIVED_DIR = INTENTS_DIR / "derived"
CLINC_PATH = INTENTS_DIR / "clinc150_train_val.csv.gz"
BITEXT_PATH = INTENTS_DIR / "bitext_customer_support.csv.gz"
MAPPING_PATH = INTENTS_DIR / "intent_mapping.csv"
TEMPLATES_PATH = DERIVED_DIR / "templates.csv"
CONNECTORS_PATH = DERIVED_DIR / "connectors.csv"
GENRE_JA_PATH = DERIVED_DIR / "genre_ja.csv"

SEED = 20240611
"""Seed of every random choice made while deriving utterances (the dataset is a pure function of the files)."""

TITLE_POOL_SIZE = 3000
"""Derived requests use the most popular N catalog titles (customers ask for popular works)."""

# Utterances per template and split. Train gets more; the Japanese non-manga templates are few and
# fixed, so their copies are repeated in train (duplicates weigh them) and de-duplicated elsewhere.
_PER_TEMPLATE = {"train": 90, "dev": 40, "test": 60}
TYPO_RATE = 0.15
"""Share of romaji/English title fills with one typo (customers mistype; the gazetteer then misses the
title and the router must rely on the catalog-similarity signal, as for "vinland sgaa")."""
_COMBOS = {"train": 3000, "dev": 700, "test": 900}
_COMPLEX = {"train": 700, "dev": 150, "test": 200}

_CITIES = ("London", "Osaka", "Paris", "New York", "Sapporo", "Berlin", "Sydney", "Toronto", "Seoul", "Fukuoka")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Utterance:
    """One labelled message.

    ``labels`` are the gold intents (one, or two for multi-intent combinations; first part first);
    ``source`` is ``clinc150``, ``bitext`` or ``derived``; ``origin`` names the source intent or the
    template id(s) it came from; ``mal_ids`` the catalog titles it mentions (derived only).
    """

    text: str
    labels: tuple[str, ...]
    split: str
    source: str
    origin: str
    complex: bool = False
    mal_ids: tuple[int, ...] = ()

    @property
    def real(self) -> bool:
        """True for CLINC150/Bitext utterances, False for derived ones."""
        return self.source != "derived"


@dataclass(frozen=True, slots=True)
class Template:
    """A row of data/intents/derived/templates.csv; slots are {title} {title2} {author} {genre} {genre2} {n} {oid} {city}."""

    template_id: str
    label: str
    lang: str
    kind: str  # "single" or "dependent"
    template: str

    @property
    def slots(self) -> frozenset[str]:
        return frozenset(_SLOT.findall(self.template))


@dataclass(slots=True)
class RouterDataset:
    """The three splits plus what went into them (for disjointness checks and reports)."""

    train: list[Utterance] = field(default_factory=list)
    dev: list[Utterance] = field(default_factory=list)
    test: list[Utterance] = field(default_factory=list)
    template_split: dict[str, str] = field(default_factory=dict)
    title_split: dict[int, str] = field(default_factory=dict)

    def split(self, name: str) -> list[Utterance]:
        """The utterances of ``name`` (train/dev/test); ValueError for another name."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)


# ---- inputs ----------------------------------------------------------------------------------

def source_files() -> list[Path]:
    """Every file the dataset is derived from (the model cache key hashes these plus this module)."""
    return [CLINC_PATH, BITEXT_PATH, MAPPING_PATH, TEMPLATES_PATH, CONNECTORS_PATH, GENRE_JA_PATH,
            DEFAULT_CATALOG, DEFAULT_AUTHORS_JA, Path(__file__)]


def data_fingerprint(extra: str = "") -> str:
    """SHA-256 (hex) of the bytes of ``source_files()`` plus ``extra`` (e.g. a model version); ~20 ms."""
    h = hashlib.sha256(extra.encode())
    for p in source_files():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _read_csv(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline="")))


def load_mapping(path: Path = MAPPING_PATH) -> dict[tuple[str, str], str]:
    """``{(source, source_intent): label}`` from intent_mapping.csv; ValueError on an unknown label."""
    out: dict[tuple[str, str], str] = {}
    for row in _read_csv(path):
        if row["label"] not in INTENTS:
            raise ValueError(f"{path}: unknown label {row['label']!r} for {row['source']}/{row['source_intent']}")
        out[(row["source"], row["source_intent"])] = row["label"]
    return out


def source_intents() -> set[tuple[str, str]]:
    """Every (source, source_intent) present in the shipped CLINC150 and Bitext files."""
    found = {("clinc150", r["intent"]) for r in _read_csv(CLINC_PATH)}
    found |= {("bitext", r["intent"]) for r in _read_csv(BITEXT_PATH)}
    return found


def load_templates(path: Path = TEMPLATES_PATH) -> list[Template]:
    """All derived templates, in file order."""
    return [Template(r["template_id"], r["label"], r["lang"], r["kind"], r["template"]) for r in _read_csv(path)]


def _crc(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def _bucket_split(key: str) -> str:
    b = _crc(key) % 10
    return "train" if b < 7 else ("dev" if b == 7 else "test")


# ---- real utterances -------------------------------------------------------------------------

def load_real(mapping: dict[tuple[str, str], str] | None = None) -> list[Utterance]:
    """CLINC150 and Bitext utterances with our labels and splits (see the module docstring).

    Raises KeyError naming the intent when a source intent is missing from the mapping (nothing
    is dropped silently).
    """
    mapping = mapping or load_mapping()
    out: list[Utterance] = []
    for r in _read_csv(CLINC_PATH):
        label = mapping[("clinc150", r["intent"])]
        text = r["text"].strip()
        if r["split"] in ("val", "oos_val"):
            split = "test"
        else:
            split = "dev" if _crc("clinc:" + text) % 10 == 0 else "train"
        out.append(Utterance(text, (label,), split, "clinc150", r["intent"]))
    for r in _read_csv(BITEXT_PATH):
        label = mapping[("bitext", r["intent"])]
        text = r["instruction"].strip()
        out.append(Utterance(text, (label,), _bucket_split("bitext:" + text.lower()), "bitext", r["intent"]))
    return out


# ---- derived utterances ----------------------------------------------------------------------

def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


@dataclass(slots=True)
class _Pools:
    """Per split: titles (mal_id, en surface forms, ja surface form), authors, genres."""

    titles: dict[str, list[tuple[int, tuple[str, ...], str]]]
    authors: dict[str, list[str]]
    genres_en: list[str]
    genres_ja: list[str]
    title_split: dict[int, str]


def _title_pools(catalog: InMemoryCatalog) -> _Pools:
    titles: dict[str, list] = defaultdict(list)
    title_split: dict[int, str] = {}
    authors: dict[str, set] = defaultdict(set)
    surfaces: dict[str, set] = defaultdict(set)
    for it in catalog.items[:TITLE_POOL_SIZE]:
        en = tuple(dict.fromkeys(t for t in (it.title, it.title_en) if t and len(t) <= 60))
        if not en:
            continue
        ja = it.title_ja if it.title_ja and detect_locale(it.title_ja) == "ja" and not _HANGUL.search(it.title_ja) else ""
        split = _bucket_split("title:" + _norm(it.title))
        titles[split].append((it.mal_id, en, ja))
        title_split[it.mal_id] = split
        surfaces[split].update(_norm(s) for s in (*en, ja) if s)
        for a in it.authors:
            if detect_locale(a) == "en" and not a.lower().startswith("studio"):
                authors[_bucket_split("author:" + _norm(a))].add(a)
    # a held-out title must not share a surface form with any train title
    for split in ("dev", "test"):
        keep = []
        for t in titles[split]:
            if any(_norm(s) in surfaces["train"] for s in (*t[1], t[2]) if s):
                del title_split[t[0]]
            else:
                keep.append(t)
        titles[split] = keep
    genre_rows = _read_csv(GENRE_JA_PATH)
    return _Pools(
        titles={k: v for k, v in titles.items()},
        authors={k: sorted(v) for k, v in authors.items()},
        genres_en=[r["genre"] for r in genre_rows],
        genres_ja=[r["genre_ja"] for r in genre_rows],
        title_split=title_split,
    )


def template_splits(templates: Sequence[Template]) -> dict[str, str]:
    """About 1 in 7 templates of each (label, lang, kind) group → test, 1 in 7 → dev, the rest train."""
    groups: dict[tuple, list[Template]] = defaultdict(list)
    for t in templates:
        groups[(t.label, t.lang, t.kind)].append(t)
    out: dict[str, str] = {}
    for group in groups.values():
        for i, t in enumerate(sorted(group, key=lambda t: _crc("tpl:" + t.template_id))):
            out[t.template_id] = "test" if i % 7 == 0 else ("dev" if i % 7 == 1 else "train")
    return out


def typo(text: str, rng: random.Random) -> str:
    """``text`` with one keyboard slip at a random letter position: swap with the next, drop, double or
    replace by a random lower-case letter. Texts under 5 characters are returned unchanged."""
    pos = [i for i, ch in enumerate(text[:-1]) if ch.isalpha()]
    if len(text) < 5 or not pos:
        return text
    i = rng.choice(pos)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    return text[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[i + 1:]


def _fill(t: Template, rng: random.Random, pools: _Pools, split: str) -> tuple[str, tuple[int, ...]]:
    """Fill a template's slots from the split's pools; returns (text, mal_ids used)."""
    titles = pools.titles[split]
    picks = rng.sample(titles, 2)
    ids: list[int] = []
    values: dict[str, str] = {}
    for slot, pick in (("title", picks[0]), ("title2", picks[1])):
        if "{" + slot + "}" not in t.template:
            continue
        mal_id, en, ja = pick
        ids.append(mal_id)
        if t.lang == "ja" and ja and rng.random() < 0.75:
            values[slot] = ja
        else:
            values[slot] = rng.choice(en)
            if rng.random() < TYPO_RATE:
                values[slot] = typo(values[slot], rng)
    values["author"] = rng.choice(pools.authors[split])
    genres = pools.genres_ja if t.lang == "ja" else pools.genres_en
    g1, g2 = rng.sample(genres, 2)
    values["genre"], values["genre2"] = (g1, g2) if t.lang == "ja" else (g1.lower() if rng.random() < 0.5 else g1, g2.lower())
    values["n"] = str(rng.randint(1, 40))
    values["oid"] = str(rng.randint(10**5, 10**12))
    values["city"] = rng.choice(_CITIES)
    text = t.template.format(**values)
    if t.lang == "en":
        if rng.random() < 0.3:
            text = text.lower()
        if rng.random() < 0.2:
            text = text.rstrip("?")
    elif rng.random() < 0.3:
        text = text.rstrip("？?。") + rng.choice(("", "？", "。", "!"))
    return text, tuple(ids)


def _derive_singles(templates, tsplit, pools, rng) -> list[Utterance]:
    out: list[Utterance] = []
    for t in templates:
        if t.kind != "single":
            continue
        split = tsplit[t.template_id]
        n = _PER_TEMPLATE[split]
        if not (t.slots) and split == "train":
            n = max(12, n // 4)  # fixed Japanese sentences: repeated copies give them weight in train
        for _ in range(n):
            text, ids = _fill(t, rng, pools, split)
            out.append(Utterance(text, (t.label,), split, "derived", t.template_id, False, ids))
    return out


def _join(a: str, b: str, connector: str) -> str:
    """``a + connector + b``; drops a's end punctuation before a punctuated connector, capitalises after '. '."""
    if connector[:1] in "?.。、":
        a = a.rstrip("?？。.!！ ")
    if connector.rstrip().endswith(".") and b:
        b = b[0].upper() + b[1:]
    return a + connector + b


def _combos(pool: dict[tuple[str, str], list[Utterance]], connectors: dict[str, list[str]],
            rng: random.Random, n: int, split: str) -> list[Utterance]:
    """``n`` two-label combinations of same-language utterances of different labels."""
    out: list[Utterance] = []
    for _ in range(n):
        lang = "ja" if rng.random() < 0.3 else "en"
        la, lb = rng.sample(INTENTS, 2)
        if not pool.get((lang, la)) or not pool.get((lang, lb)):
            continue
        a, b = rng.choice(pool[(lang, la)]), rng.choice(pool[(lang, lb)])
        text = _join(a.text, b.text, rng.choice(connectors[lang]))
        out.append(Utterance(text, (la, lb), split, "derived", f"combo:{a.origin}+{b.origin}", False, a.mal_ids + b.mal_ids))
    return out


def _complex(pool, dependents, connectors, rng, n, split, pools) -> list[Utterance]:
    """``n`` complex requests: a search/recommend/order utterance + a dependent template (see module docstring)."""
    out: list[Utterance] = []
    for _ in range(n):
        lang = "ja" if rng.random() < 0.3 else "en"
        deps = [d for d in dependents if d.lang == lang]
        if not deps:
            continue
        d = rng.choice(deps)
        la = rng.choice(("search", "recommend", "order"))
        if not pool.get((lang, la)):
            continue
        a = rng.choice(pool[(lang, la)])
        second, _ = _fill(d, rng, pools, split)
        labels = (la,) if d.label == la else (la, d.label)
        text = _join(a.text, second, rng.choice(connectors[lang]))
        out.append(Utterance(text, labels, split, "derived", f"complex:{a.origin}+{d.template_id}", True, a.mal_ids))
    return out


def derive(catalog: InMemoryCatalog, real: Sequence[Utterance], seed: int = SEED) -> tuple[list[Utterance], dict[str, str], dict[int, str]]:
    """Derived single, multi-intent and complex utterances for all splits.

    Returns (utterances, template_id → split, mal_id → split). Multi-intent combinations draw both
    parts from the same split (real single utterances included), so test combos are made of test parts.
    """
    rng = random.Random(seed)
    templates = load_templates()
    tsplit = template_splits(templates)
    pools = _title_pools(catalog)
    singles = _derive_singles(templates, tsplit, pools, rng)
    connectors: dict[str, list[str]] = defaultdict(list)
    for r in _read_csv(CONNECTORS_PATH):
        connectors[r["lang"]].append(r["connector"])
    out = list(singles)
    for split in SPLITS:
        pool: dict[tuple[str, str], list[Utterance]] = defaultdict(list)
        for u in (*real, *singles):
            if u.split == split:
                pool[(detect_locale(u.text), u.labels[0])].append(u)
        out += _combos(pool, connectors, rng, _COMBOS[split], split)
        dependents = [t for t in templates if t.kind == "dependent" and tsplit[t.template_id] == split]
        out += _complex(pool, dependents, connectors, rng, _COMPLEX[split], split, pools)
    return out, tsplit, pools.title_split


def _dedupe(items: Iterable[Utterance]) -> list[Utterance]:
    seen: set[str] = set()
    out = []
    for u in items:
        key = _norm(u.text)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out


def build_dataset(catalog: InMemoryCatalog | None = None) -> RouterDataset:
    """The full router dataset (≈ 31k train, 4k dev, 9k test utterances; ~2 s).

    Dev and test are de-duplicated by normalised text, and any dev/test text that also occurs in
    train is removed from dev/test; train keeps duplicates (they weight the few fixed Japanese
    templates).
    """
    catalog = catalog or load_catalog()
    real = load_real()
    derived, tsplit, title_split = derive(catalog, real)
    ds = RouterDataset(template_split=tsplit, title_split=title_split)
    every = [*real, *derived]
    ds.train = [u for u in every if u.split == "train"]
    train_texts = {_norm(u.text) for u in ds.train}
    ds.dev = [u for u in _dedupe(u for u in every if u.split == "dev") if _norm(u.text) not in train_texts]
    ds.test = [u for u in _dedupe(u for u in every if u.split == "test") if _norm(u.text) not in train_texts]
    return ds
