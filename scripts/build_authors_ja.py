"""Build data/catalog/authors_ja.csv.gz: Japanese author names for catalog titles, from the Japan Media Arts Database.

Input (offline, no network):

- ``--madb``: the Media Arts Database magazine-serialisation records
  (``/work/shared/data/catalog_ja/madb_magazine_serializations.csv``; columns ``madb_id, title_ja,
  title_kana, creator_ja, creator_kana, date_published, original_work_creator, contributor, note``).
- ``--catalog``: the shipped catalog (``data/catalog/manga_catalog.csv.gz``), read through
  ``tools.backends.catalog``.

Join rule (precision first; see ``join``):

1. Titles are compared by ``title_key``: NFKC, case-fold, every character that is not a letter or a
   digit removed (spaces, punctuation, symbols such as ×, ☆, ・). Only catalog items whose
   ``media_type`` is not Manhwa/Manhua and whose ``title_ja`` is set take part. MADB rows without
   any creator are ignored; the others are grouped by key and by creator set (``split_creators``
   of ``creator_ja`` plus ``original_work_creator``).
2. Cross-check: the kana readings (``creator_kana``) are romanised (``kana_to_romaji``) and compared
   with the catalog's romanised authors (``cross_check``: ``agree``, ``near``, ``disagree`` or
   ``unchecked``).
3. A key naming one catalog item and one MADB creator set is kept when the check is ``agree`` or
   ``near``; ``disagree`` is dropped, and so is ``unchecked`` (no reading, or no catalog author)
   unless ``--keep-unchecked``.
4. A key naming several catalog items or several creator sets is ambiguous. An item is kept only
   when exactly one creator set ``agree``s with it and that set agrees with no other item
   (e.g. DEATH NOTE: 小畑健/大場つぐみ, not a crossover one-shot by 澤井啓夫/大場つぐみ/小畑健);
   every other ambiguous item is skipped. ``--strict`` skips all ambiguous keys.
5. Propagation (``author_pairs``): an ``agree`` match whose MADB rows name one creator, whose
   reading names exactly one of the item's romanised authors, pairs that romanised name with the
   Japanese name (e.g. 'Takehiko Inoue' → 井上雄彦 from SLAM DUNK). Names paired with two different
   Japanese spellings are left out, as are short one-word names. Catalog items without a title
   match get the paired Japanese names of their authors (``check='author'``; e.g. Vagabond, which
   MADB does not list). ``--no-propagate`` turns this off.

Output: gzip CSV, one row per matched catalog item, sorted by ``mal_id``, columns ``mal_id,
authors_ja, madb_ids, check`` (lists ``|``-separated; ``authors_ja`` holds the MADB creators then
original-work creators, NFKC-normalised, in MADB order; ``check`` the cross-check result). The
gzip header carries no timestamp, so the same inputs give the same bytes.

Usage::

    python scripts/build_authors_ja.py --madb /work/shared/data/catalog_ja/madb_magazine_serializations.csv \
        [--out data/catalog/authors_ja.csv.gz] [--sample 30]

``--sample N`` prints N matches drawn with a fixed seed (for hand-checking) and the counts.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import gzip
import io
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.domain import CatalogItem  # noqa: E402
from tools.backends.query import normalize  # noqa: E402

DEFAULT_OUT = ROOT / "data" / "catalog" / "authors_ja.csv.gz"
DEFAULT_MADB = Path("/work/shared/data/catalog_ja/madb_magazine_serializations.csv")
EXCLUDED_MEDIA = frozenset({"manhwa", "manhua"})  # Korean/Chinese works are not in Japanese magazines

Check = Literal["agree", "near", "disagree", "unchecked", "author"]


# ---- text keys -------------------------------------------------------------------------------------


def title_key(text: str | None) -> str:
    """Join key of a title: NFKC, case-fold, keep only letters and digits (Unicode categories L* and N*).

    'ＯＮＥ　ＰＩＥＣＥ' → 'onepiece'; 'ゴ・メ・ン・ネ わがままで' → 'ゴメンネわがままで'. The long-vowel
    mark ー is a letter (Lm) and is kept. Returns '' for None or text without letters/digits.
    """
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in t if unicodedata.category(ch)[0] in "LN")


# Names are separated by a slash or an ampersand ("宮下あきら&WILD THING"), or follow a role in brackets ("[文]", "[原作]", "矢立肇 [シナリオ]黒田洋介").
_CREATOR_SEP = re.compile(r"[／/&＆]|\s*[\[［〔][^\]］〕]*[\]］〕]\s*")
_PAREN = re.compile(r"[(（][^)）]*[)）]")  # an alias or group in brackets: "竹若元博(バッファロー吾郎)"
_ET_AL = frozenset({"他", "ほか", "ほか多数", "他多数"})


def split_creators(text: str | None) -> tuple[str, ...]:
    """Creator names of one MADB ``creator_ja`` / ``original_work_creator`` cell, in order, deduplicated.

    Names are separated by '／', '/', '&' or '＆' (with any spacing) or by a role in square brackets ("[文]",
    "[原作]"), which is dropped; aliases in round brackets are removed; "他" (et al.) and names carrying © are dropped; each name is
    NFKC-normalised with runs of spaces collapsed. '鳥山明　／　尾田栄一郎' → ('鳥山明', '尾田栄一郎').
    Returns () for None or an empty cell.
    """
    if not text:
        return ()
    out: list[str] = []
    for part in _CREATOR_SEP.split(text):
        name = _PAREN.sub("", part)
        name = " ".join(unicodedata.normalize("NFKC", name).split())
        if not name or name in _ET_AL or "©" in name:
            continue
        out.append(name)
    return tuple(dict.fromkeys(out))


# Modified Hepburn for katakana (hiragana is folded to katakana first). Two-character syllables
# (youon and the foreign-sound combinations) are tried before single characters.
_KANA2 = {
    "キャ": "kya", "キュ": "kyu", "キョ": "kyo", "ギャ": "gya", "ギュ": "gyu", "ギョ": "gyo",
    "シャ": "sha", "シュ": "shu", "ショ": "sho", "シェ": "she", "ジャ": "ja", "ジュ": "ju", "ジョ": "jo",
    "ジェ": "je", "チャ": "cha", "チュ": "chu", "チョ": "cho", "チェ": "che", "ヂャ": "ja", "ヂュ": "ju",
    "ヂョ": "jo", "ニャ": "nya", "ニュ": "nyu", "ニョ": "nyo", "ヒャ": "hya", "ヒュ": "hyu", "ヒョ": "hyo",
    "ビャ": "bya", "ビュ": "byu", "ビョ": "byo", "ピャ": "pya", "ピュ": "pyu", "ピョ": "pyo",
    "ミャ": "mya", "ミュ": "myu", "ミョ": "myo", "リャ": "rya", "リュ": "ryu", "リョ": "ryo",
    "ティ": "ti", "ディ": "di", "トゥ": "tu", "ドゥ": "du", "ファ": "fa", "フィ": "fi", "フェ": "fe",
    "フォ": "fo", "ウィ": "wi", "ウェ": "we", "ウォ": "wo", "ヴァ": "va", "ヴィ": "vi", "ヴェ": "ve",
    "ヴォ": "vo", "ツァ": "tsa",
}
_KANA1 = dict(
    zip(
        "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン"
        "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴァィゥェォャュョヮ",
        "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no ha hi fu he ho "
        "ma mi mu me mo ya yu yo ra ri ru re ro wa i e o n ga gi gu ge go za ji zu ze zo da ji zu de do "
        "ba bi bu be bo pa pi pu pe po vu a i u e o ya yu yo wa".split(),
        strict=True,
    )
)
_HIRA_TO_KATA = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)}


def kana_to_romaji(kana: str | None) -> str:
    """Modified-Hepburn romaji of a kana reading: 'オダエイイチロウ' → 'odaeiichirou'.

    Sokuon ッ doubles the next consonant (ッチ → 'tchi'), the long-vowel mark ー repeats the previous
    vowel, ン is 'n'. Characters that are not kana (Latin letters, spaces, separators) are kept as
    they are after NFKC, so callers compare with ``romaji_key``. Returns '' for None or ''.
    """
    if not kana:
        return ""
    s = unicodedata.normalize("NFKC", kana).translate(_HIRA_TO_KATA)
    out: list[str] = []
    double = False
    i = 0
    while i < len(s):
        syl = _KANA2.get(s[i : i + 2])
        step = 2
        if syl is None:
            syl, step = _KANA1.get(s[i]), 1
        ch = s[i]
        i += step
        if ch == "ッ":
            double = True
            continue
        if ch == "ー":
            prev = next((c for c in reversed("".join(out)) if c in "aeiou"), "")
            out.append(prev)
            continue
        text = syl if syl is not None else ch
        if double and syl is not None and syl[0] not in "aeioun":
            text = ("t" if syl.startswith("ch") else syl[0]) + text
        double = False
        out.append(text)
    return "".join(out)


# Spelling variants of romanised names that a kana reading cannot produce, folded on both sides:
# l → r (Leiji/レイジ), c not in "ch" → k (Ryoco/リョウコ), jy → j (Kamijyo/カミジョウ),
# m before b/p → n (Kambe/カンベ), h closing a long vowel → dropped (Ohba/オオバ, Tohru/トオル).
_SPELLING = (
    (re.compile(r"l"), "r"),
    (re.compile(r"c(?!h)"), "k"),
    (re.compile(r"jy"), "j"),
    (re.compile(r"m(?=[bp])"), "n"),
    (re.compile(r"(?<=[aeiou])h(?![aeiouy])"), ""),
)


def romaji_key(text: str | None) -> str:
    """Comparison form of romaji: ``tools.backends.query.normalize`` (case-fold, long vowels folded:
    ou/oo/uu/aa/ii/ee → one vowel) with spaces removed and the ``_SPELLING`` variants folded.

    'Eiichiro Oda' → 'eichirooda'; 'Tsugumi Ohba' → 'tsugumioba'; '' for None or no letters.
    """
    t = normalize(text).replace(" ", "")
    for pattern, repl in _SPELLING:
        t = pattern.sub(repl, t)
    return normalize(t)


_NAME_WORDS = re.compile(r"[\W_]+")


def author_keys(name: str) -> set[str]:
    """``romaji_key`` forms of one romanised catalog author, in both name orders.

    'Eiichiro Oda' → {'eichirooda', 'odaeichiro'}, 'Ai Yazawa' → {'aiyazawa', 'yazawai'}; a one-word name gives one key. Keys shorter
    than 4 characters are left out (too short to be evidence inside a longer reading).
    """
    # Join the words first, then fold, as the reading is folded as one run ('Ai Yazawa' → 'yazawai').
    words = _NAME_WORDS.split(unicodedata.normalize("NFKC", name))
    words = [w for w in words if w]
    keys = {romaji_key("".join(words)), romaji_key("".join(reversed(words)))} if words else set()
    return {k for k in keys if len(k) >= 4}


NEAR_RATIO = 0.8  # see ``similarity``; on the shipped data wrong pairings score <= 0.63, right ones >= 0.81


def similarity(key: str, reading: str) -> float:
    """Best ``difflib.SequenceMatcher`` ratio (0-1) of ``key`` against any window of ``reading`` of
    length len(key)-1 .. len(key)+1 (the reading may run several names together). 'kubotite' vs
    'kubotaito' → 0.88. Returns 0.0 when either string is empty."""
    if not key or not reading:
        return 0.0
    best = 0.0
    for length in (len(key) - 1, len(key), len(key) + 1):
        for start in range(max(1, len(reading) - length + 1)):
            window = reading[start : start + length]
            best = max(best, difflib.SequenceMatcher(None, key, window, autojunk=False).ratio())
    return best


def cross_check(catalog_authors: Sequence[str], kana_readings: Iterable[str]) -> Check:
    """Whether the MADB kana readings name one of the catalog's romanised authors.

    ``agree``: some ``author_keys`` form of a catalog author is a substring of the ``romaji_key``
    of a romanised reading (readings may run several names together), or a name too short for a
    key ('ONE', 'RAN') equals a whole reading; ``near``: not ``agree`` but a key's ``similarity``
    to a reading is at least ``NEAR_RATIO`` (pen-name spellings such as 'Tite Kubo'/クボタイト,
    'Ishinomori'/イシモリ); ``disagree``: both sides are known and none of these holds;
    ``unchecked``: no usable reading or no catalog author.
    """
    readings = [romaji_key(kana_to_romaji(k)) for k in kana_readings]
    readings = [r for r in readings if r]
    keys = set().union(*(author_keys(a) for a in catalog_authors)) if catalog_authors else set()
    whole = {romaji_key(a) for a in catalog_authors} - {""}
    if not readings or not whole:
        return "unchecked"
    if any(k in r for r in readings for k in keys) or any(r in whole for r in readings):
        return "agree"
    if any(similarity(k, r) >= NEAR_RATIO for r in readings for k in keys):
        return "near"
    return "disagree"


# ---- MADB rows and the join ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MadbRow:
    """One MADB serialisation record: ``creators`` and ``original_creators`` from ``split_creators``,
    ``creator_kana`` the raw kana reading cell ('' when absent)."""

    madb_id: str
    title_ja: str
    creators: tuple[str, ...]
    creator_kana: str = ""
    original_creators: tuple[str, ...] = ()

    @classmethod
    def from_csv_row(cls, row: dict) -> MadbRow:
        """From a dict with the MADB CSV column names (missing columns read as '')."""
        return cls(
            madb_id=(row.get("madb_id") or "").strip(),
            title_ja=(row.get("title_ja") or "").strip(),
            creators=split_creators(row.get("creator_ja")),
            creator_kana=(row.get("creator_kana") or "").strip(),
            original_creators=split_creators(row.get("original_work_creator")),
        )

    @property
    def people(self) -> tuple[str, ...]:
        """Creators then original-work creators, deduplicated, in order."""
        return tuple(dict.fromkeys((*self.creators, *self.original_creators)))


@dataclass(frozen=True, slots=True)
class Match:
    """One joined catalog item: Japanese author names, the MADB record ids used, the cross-check result."""

    mal_id: int
    authors_ja: tuple[str, ...]
    madb_ids: tuple[str, ...]
    check: Check
    title_ja: str = ""


@dataclass
class JoinResult:
    """Kept matches (sorted by mal_id), matches dropped by the cross-check, and counts.

    Counts (catalog items unless noted): ``catalog_titles`` (items with a usable ``title_ja`` key),
    ``title_hits`` (items whose key occurs among MADB rows with creators), ``one_to_one`` (hits
    where the key names one catalog item and one MADB creator set) split into ``agree``, ``near``,
    ``disagree`` and ``unchecked``; ``ambiguous`` (hits with several catalog items or several
    MADB creator sets) split into ``ambiguous_resolved`` (exactly one pairing agrees both ways) and
    ``ambiguous_skipped``; ``kept`` (rows written).
    """

    matches: list[Match]
    counts: Counter = field(default_factory=Counter)
    dropped: list[Match] = field(default_factory=list)


def _match(item: CatalogItem, rows: Sequence[MadbRow], check: Check) -> Match:
    return Match(
        mal_id=item.mal_id,
        authors_ja=rows[0].people,
        madb_ids=tuple(sorted({r.madb_id for r in rows})),
        check=check,
        title_ja=item.title_ja,
    )


def join(
    items: Sequence[CatalogItem],
    rows: Sequence[MadbRow],
    keep_unchecked: bool = False,
    resolve_ambiguous: bool = True,
    propagate: bool = True,
) -> JoinResult:
    """Join MADB rows to catalog items by ``title_key`` of ``title_ja`` (rule in the module docstring).

    Per key, the catalog candidates (Manhwa/Manhua excluded) are paired with the distinct MADB
    creator sets (``MadbRow.people``; rows without creators ignored). One candidate and one set:
    kept when ``cross_check`` gives ``agree`` or ``near`` (or ``unchecked`` with ``keep_unchecked``). Several
    candidates or sets (ambiguous): with ``resolve_ambiguous``, a candidate is kept when exactly one
    set agrees with it and that set agrees with no other candidate; otherwise (and always without
    ``resolve_ambiguous``) it is skipped. Deterministic; never raises on odd text. One-to-one
    matches dropped by the cross-check are returned in ``JoinResult.dropped`` for inspection.
    """
    counts: Counter = Counter()
    by_key: dict[str, list[CatalogItem]] = defaultdict(list)
    for it in items:
        key = title_key(it.title_ja)
        if key and it.media_type.casefold() not in EXCLUDED_MEDIA:
            by_key[key].append(it)
    madb: dict[str, dict[frozenset, list[MadbRow]]] = defaultdict(dict)
    for r in rows:
        key = title_key(r.title_ja)
        if key and r.people:
            madb[key].setdefault(frozenset(r.people), []).append(r)

    kept: list[Match] = []
    dropped: list[Match] = []
    for key, cands in by_key.items():
        counts["catalog_titles"] += len(cands)
        sets = list(madb.get(key, {}).values())
        if not sets:
            continue
        counts["title_hits"] += len(cands)
        checks = [[cross_check(it.authors, [r.creator_kana for r in g]) for g in sets] for it in cands]
        if len(cands) == 1 and len(sets) == 1:
            check = checks[0][0]
            counts["one_to_one"] += 1
            counts[check] += 1
            m = _match(cands[0], sets[0], check)
            keep = check in ("agree", "near") or (check == "unchecked" and keep_unchecked)
            (kept if keep else dropped).append(m)
            continue
        counts["ambiguous"] += len(cands)
        for i, it in enumerate(cands):
            agreeing = [j for j, c in enumerate(checks[i]) if c == "agree"]
            unique = (
                resolve_ambiguous
                and len(agreeing) == 1
                and sum(checks[o][agreeing[0]] == "agree" for o in range(len(cands))) == 1
            )
            if unique:
                counts["ambiguous_resolved"] += 1
                kept.append(_match(it, sets[agreeing[0]], "agree"))
            else:
                counts["ambiguous_skipped"] += 1
    if propagate:
        kept.extend(_propagate(items, kept, {r.madb_id: r for r in rows}, counts))
    kept.sort(key=lambda m: m.mal_id)
    dropped.sort(key=lambda m: m.mal_id)
    counts["kept"] = len(kept)
    return JoinResult(kept, counts, dropped)


def author_pairs(
    items: Sequence[CatalogItem], matches: Sequence[Match], rows_by_id: dict[str, MadbRow], counts: Counter | None = None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Romanised author → (Japanese name, MADB ids), learned from ``agree`` title matches.

    A pair is learned from a match whose MADB rows name exactly one creator and whose reading
    contains the key (``author_keys``) of exactly one of the item's catalog authors, when that
    name is distinctive (two or more words, or one word of at least 5 letters). Keys are
    ``normalize``d romanised names. A romanised name paired with two different Japanese names is a
    conflict and left out (counted in ``counts['pair_conflicts']`` when ``counts`` is given).
    """
    by_id = {it.mal_id: it for it in items}
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for m in matches:
        group = [rows_by_id[i] for i in m.madb_ids if i in rows_by_id]
        creators = {r.creators for r in group}
        if m.check != "agree" or len(creators) != 1 or len(next(iter(creators))) != 1:
            continue
        readings = [romaji_key(kana_to_romaji(r.creator_kana)) for r in group]
        named = [
            a for a in by_id[m.mal_id].authors
            if any(k in rd for rd in readings if rd for k in author_keys(a)) or romaji_key(a) in readings
        ]
        if len(named) == 1 and _distinctive(named[0]):
            found[normalize(named[0])][group[0].creators[0]].update(m.madb_ids)
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, ja in found.items():
        if len(ja) == 1:
            ((ja_name, ids),) = ja.items()
            out[name] = (ja_name, tuple(sorted(ids)))
        elif counts is not None:
            counts["pair_conflicts"] += 1
    return out


def _distinctive(name: str) -> bool:
    """A romanised name safe to propagate: two or more words, or one word of 5+ letters ('CLAMP', not 'Yasu')."""
    words = normalize(name).split()
    return len(words) >= 2 or (len(words) == 1 and len(words[0]) >= 5)


def _propagate(
    items: Sequence[CatalogItem], kept: Sequence[Match], rows_by_id: dict[str, MadbRow], counts: Counter
) -> list[Match]:
    """Matches with ``check='author'`` for unmatched catalog items by an author in ``author_pairs``."""
    pairs = author_pairs(items, kept, rows_by_id, counts)
    counts["author_pairs"] = len(pairs)
    done = {m.mal_id for m in kept}
    out: list[Match] = []
    for it in items:
        if it.mal_id in done:
            continue
        hits = [pairs[n] for n in dict.fromkeys(normalize(a) for a in it.authors) if n in pairs]
        if hits:
            ids = tuple(sorted({i for _, src in hits for i in src}))
            out.append(Match(it.mal_id, tuple(dict.fromkeys(j for j, _ in hits)), ids, "author", it.title_ja))
    counts["propagated"] = len(out)
    return out


# ---- I/O -------------------------------------------------------------------------------------------


def read_madb(path: Path) -> list[MadbRow]:
    """All rows of the MADB CSV (UTF-8, header row) as MadbRow. Raises OSError if unreadable."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [MadbRow.from_csv_row(r) for r in csv.DictReader(fh)]


def write_matches(path: Path, matches: Sequence[Match]) -> None:
    """Write ``mal_id, authors_ja, madb_ids, check`` as gzip CSV with a zero gzip timestamp (byte-reproducible)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["mal_id", "authors_ja", "madb_ids", "check"])
    for m in matches:
        w.writerow([m.mal_id, "|".join(m.authors_ja), "|".join(m.madb_ids), m.check])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (2 when the MADB file is missing)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--madb", type=Path, default=DEFAULT_MADB, help="MADB serialisations CSV")
    ap.add_argument("--catalog", type=Path, default=None, help="catalog CSV(.gz); default: the shipped one")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .csv.gz")
    ap.add_argument("--keep-unchecked", action="store_true", help="also keep matches the cross-check cannot test")
    ap.add_argument("--strict", action="store_true", help="skip every ambiguous title (no resolution by reading)")
    ap.add_argument("--no-propagate", action="store_true", help="title matches only (no author-name propagation)")
    ap.add_argument("--sample", type=int, default=0, help="print N kept matches (seeded) for hand-checking")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dry-run", action="store_true", help="count only, write nothing")
    args = ap.parse_args(argv)
    if not args.madb.exists():
        print(f"MADB file not found: {args.madb}", file=sys.stderr)
        return 2

    from tools.backends.catalog import DEFAULT_CATALOG, InMemoryCatalog

    catalog = InMemoryCatalog.from_csv(args.catalog or DEFAULT_CATALOG)
    result = join(catalog.items, read_madb(args.madb), keep_unchecked=args.keep_unchecked,
                  resolve_ambiguous=not args.strict, propagate=not args.no_propagate)
    for k in ("catalog_titles", "title_hits", "one_to_one", "agree", "near", "disagree", "unchecked", "ambiguous",
              "ambiguous_resolved", "ambiguous_skipped", "author_pairs", "pair_conflicts", "propagated", "kept"):
        print(f"{k:18} {result.counts[k]}")
    if args.sample:
        rng = random.Random(args.seed)
        by_id = {it.mal_id: it for it in catalog.items}
        for label, pool in (("kept", result.matches), ("dropped", result.dropped)):
            print(f"\n-- {label} sample --")
            for m in sorted(rng.sample(pool, min(args.sample, len(pool))), key=lambda m: m.mal_id):
                it = by_id[m.mal_id]
                print(f"{m.mal_id}\t{m.check}\t{it.title_ja} / {it.title}\t{', '.join(it.authors)}"
                      f"\t→ {'|'.join(m.authors_ja)}\t{'|'.join(m.madb_ids)}")
    if not args.dry_run:
        write_matches(args.out, result.matches)
        print(f"wrote {len(result.matches)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
