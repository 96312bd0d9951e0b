"""Load the shipped catalog (data/catalog/manga_catalog.csv.gz) into memory, with demo prices, stock and Japanese author names."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

from core.domain import CatalogItem
from core.settings import PROJECT_ROOT

DEFAULT_CATALOG = PROJECT_ROOT / "data" / "catalog" / "manga_catalog.csv.gz"
DEFAULT_AUTHORS_JA = PROJECT_ROOT / "data" / "catalog" / "authors_ja.csv.gz"


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split("|") if v.strip()) if value else ()


def _authors(value: str) -> tuple[str, ...]:
    """'Miura, Kentarou (Story & Art), Studio Gaga (Art)' → ('Kentarou Miura', 'Studio Gaga').

    MAL writes people as 'Family, Given (Role)' joined by ', '; we return 'Given Family' for people,
    unchanged names for studios, roles dropped.
    """
    out: list[str] = []
    parts = [p.strip() for p in value.split(")") if p.strip()] if value else []
    for part in parts:
        name = part.lstrip(", ").split("(")[0].strip()
        if not name:
            continue
        if ", " in name:
            family, given = name.split(", ", 1)
            name = f"{given} {family}"
        out.append(name)
    return tuple(dict.fromkeys(out))


def demo_price_jpy(mal_id: int, media_type: str) -> int:
    """Deterministic demo price per volume (JPY): a stable CRC32 of the id picks one of 8 tiers.

    Manga ¥528-¥913; light novels and one-shots ¥660-¥1,430. No real prices exist in the data.
    """
    tier = zlib.crc32(f"price:{mal_id}".encode()) % 8
    if media_type in ("Light Novel", "Novel"):
        return 660 + tier * 110
    return 528 + tier * 55


def demo_stock(mal_id: int) -> int:
    """Deterministic demo stock level: 0-39 copies, about 1 title in 20 out of stock."""
    h = zlib.crc32(f"stock:{mal_id}".encode())
    return 0 if h % 20 == 0 else h % 40 or 1


_STATUS = {
    "finished": "Finished",
    "publishing": "Publishing",
    "currently_publishing": "Publishing",
    "on hiatus": "On Hiatus",
    "discontinued": "Discontinued",
}


def _int(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _row_to_item(row: dict, authors_ja: tuple[str, ...] = ()) -> CatalogItem:
    mal_id = int(row["mal_id"])
    media_type = row.get("media_type") or "Manga"
    members = _int(row.get("mal_members_2024") or "") or _int(row.get("mal_num_list_users_latest") or "") or 0
    score = row.get("mal_score_2024") or row.get("mal_mean_latest") or ""
    try:
        score_f = float(score)
    except ValueError:
        score_f = 0.0
    return CatalogItem(
        mal_id=mal_id,
        title=row["title"].strip(),
        title_en=(row.get("title_en") or "").strip(),
        title_ja=(row.get("title_ja") or "").strip(),
        synonyms=_split(row.get("title_synonyms") or ""),
        authors=_authors(row.get("authors") or ""),
        genres=_split(row.get("genres") or ""),
        themes=_split(row.get("themes") or ""),
        demographic=(row.get("demographic") or "").strip(),
        media_type=media_type,
        status=_STATUS.get((row.get("status") or "").strip().lower(), "Unknown"),
        num_volumes=_int(row.get("num_volumes") or ""),
        published=(row.get("published") or "").strip(),
        members=members,
        score=score_f,
        synopsis=(row.get("synopsis") or "").strip(),
        price_jpy=demo_price_jpy(mal_id, media_type),
        stock=demo_stock(mal_id),
        authors_ja=authors_ja,
    )


def read_rows(path: Path = DEFAULT_CATALOG) -> Iterator[dict]:
    """Yield raw CSV rows (dicts of strings) of a plain or gzip catalog file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""))


def read_authors_ja(path: Path | None = DEFAULT_AUTHORS_JA) -> dict[int, tuple[str, ...]]:
    """Japanese author names by ``mal_id`` from a gzip or plain CSV with columns ``mal_id, authors_ja``.

    ``authors_ja`` is ``|``-separated (e.g. ``13 → ('尾田栄一郎',)``). The shipped file is built by
    scripts/build_authors_ja.py from the Japan Media Arts Database (see data/README.md); about 1,900
    titles have names. Returns {} when ``path`` is None or does not exist; raises ValueError on a
    non-integer ``mal_id``.
    """
    if path is None or not Path(path).exists():
        return {}
    return {int(row["mal_id"]): _split(row.get("authors_ja") or "") for row in read_rows(Path(path))}


class InMemoryCatalog:
    """The catalog as a list (popularity order, as shipped) plus an id index.

    Shape: ``items`` is a tuple of CatalogItem (11,815 for the shipped file); ``get(mal_id)`` is O(1).
    Loading the shipped file takes ~0.5 s and ~60 MB.
    """

    def __init__(self, items: Sequence[CatalogItem]):
        self.items: tuple[CatalogItem, ...] = tuple(items)
        self._by_id = {it.mal_id: it for it in self.items}

    @classmethod
    def from_csv(
        cls, path: Path = DEFAULT_CATALOG, limit: int | None = None, authors_ja_path: Path | None = DEFAULT_AUTHORS_JA
    ) -> InMemoryCatalog:
        """Read a catalog CSV (plain or .gz). ``limit`` keeps the first N (most popular) rows, for tests.

        Japanese author names come from ``authors_ja_path`` (see ``read_authors_ja``; None or a
        missing file leaves ``CatalogItem.authors_ja`` empty), joined on ``mal_id``.
        """
        names = read_authors_ja(authors_ja_path)
        items = []
        for row in read_rows(path):
            items.append(_row_to_item(row, names.get(int(row["mal_id"]), ())))
            if limit and len(items) >= limit:
                break
        return cls(items)

    def get(self, mal_id: int) -> CatalogItem | None:
        """The item with MyAnimeList id ``mal_id``, or None."""
        return self._by_id.get(int(mal_id))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CatalogItem]:
        return iter(self.items)


@lru_cache(maxsize=2)
def load_catalog(path: Path = DEFAULT_CATALOG) -> InMemoryCatalog:
    """The shipped catalog, loaded once per process per path."""
    return InMemoryCatalog.from_csv(path)
