"""The recommender's vocabularies: the bilingual tag map behind stated likes, item tags and the review ratings.

- Tags: the catalog's genres, themes and demographics (MyAnimeList labels) form one namespace (``item_tags``);
  ``TAGS`` and ``PHRASES`` map English and Japanese keywords onto them (``parse_liked_text``) and give their
  Japanese display names (``tag_label``).
- Users and items of the collaborative signal: MyAnimeList review scores (hashed user ids, MAL manga ids,
  scores 1-10) read by ``load_ratings``; ``LIKED_SCORE`` is where a score counts as "liked".
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from core.domain import CatalogItem
from core.settings import PROJECT_ROOT

DEFAULT_RATINGS = PROJECT_ROOT / "data" / "ratings" / "manga_review_scores.csv.gz"
LIKED_SCORE = 7
"""A review score at or above this (1-10 scale) counts as "liked" for the collaborative model and the eval."""


# ---- bilingual keyword map ---------------------------------------------------------------------

# canonical catalog tag → (Japanese display name, English keywords, Japanese keywords).
# Canonical names are the MyAnimeList genre / theme / demographic labels found in the catalog.
TAGS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "Action": ("アクション", ("action", "fights", "fighting", "battle", "battles"), ("アクション", "バトル", "戦闘")),
    "Adventure": ("冒険", ("adventure", "adventures", "quest", "journey"), ("冒険", "アドベンチャー")),
    "Avant Garde": ("アヴァンギャルド", ("avant garde", "avant-garde", "experimental"), ("アヴァンギャルド", "前衛")),
    "Award Winning": ("受賞作", ("award winning", "award-winning", "acclaimed", "masterpiece"), ("受賞", "名作")),
    "Boys Love": ("BL", ("boys love", "boys' love", "bl", "yaoi"), ("ボーイズラブ", "BL")),
    "Comedy": ("コメディ", ("comedy", "comedies", "funny", "humor", "humour", "hilarious", "lighter", "light-hearted", "lighthearted"),
               ("コメディ", "コメディー", "ギャグ", "笑える", "お笑い", "明るい")),
    "Drama": ("ドラマ", ("drama", "dramatic", "emotional", "tearjerker", "sad"), ("ドラマ", "感動", "泣ける", "切ない")),
    "Fantasy": ("ファンタジー", ("fantasy", "magic", "magical"), ("ファンタジー", "魔法")),
    "Girls Love": ("百合", ("girls love", "girls' love", "yuri"), ("百合", "ガールズラブ")),
    "Gourmet": ("グルメ", ("gourmet", "food", "cooking"), ("グルメ", "料理", "食べ物")),
    "Horror": ("ホラー", ("horror", "scary", "creepy", "dark", "terrifying"), ("ホラー", "怖い", "恐怖", "ダーク")),
    "Mystery": ("ミステリー", ("mystery", "mysteries", "whodunit"), ("ミステリー", "ミステリ", "推理", "謎解き")),
    "Romance": ("恋愛", ("romance", "romantic", "love story", "love stories"), ("恋愛", "ロマンス", "ラブストーリー", "恋")),
    "Sci-Fi": ("SF", ("sci-fi", "scifi", "science fiction", "sf", "cyberpunk"), ("SF", "ＳＦ", "サイエンスフィクション", "近未来")),
    "Slice of Life": ("日常", ("slice of life", "slice-of-life", "everyday life", "cozy", "wholesome"), ("日常", "ほのぼの")),
    "Sports": ("スポーツ", ("sports", "sport"), ("スポーツ",)),
    "Supernatural": ("超常", ("supernatural", "ghost", "ghosts", "yokai", "spirits", "occult"), ("超常", "超自然", "妖怪", "幽霊", "オカルト")),
    "Suspense": ("サスペンス", ("suspense", "thriller", "thrillers", "suspenseful"), ("サスペンス", "スリラー", "ハラハラ")),
    "Shounen": ("少年マンガ", ("shounen", "shonen"), ("少年",)),
    "Shoujo": ("少女マンガ", ("shoujo", "shojo"), ("少女",)),
    "Seinen": ("青年マンガ", ("seinen",), ("青年",)),
    "Josei": ("女性向け", ("josei",), ("女性向け", "女性漫画", "レディース")),
    "Kids": ("子供向け", ("kids", "children", "for kids"), ("子供向け", "子ども向け", "児童")),
    "School": ("学園", ("school", "high school", "school life"), ("学園", "学校", "高校")),
    "Psychological": ("心理", ("psychological", "mind games", "mind-bending"), ("心理", "サイコ")),
    "Historical": ("歴史", ("historical", "history", "period piece"), ("歴史", "時代劇", "時代物", "戦国")),
    "Isekai": ("異世界", ("isekai", "another world", "transported to another world"), ("異世界",)),
    "Martial Arts": ("武道", ("martial arts", "kung fu", "karate"), ("武道", "武術", "格闘技", "カンフー")),
    "Mythology": ("神話", ("mythology", "myth", "myths", "gods"), ("神話",)),
    "Mecha": ("メカ", ("mecha", "robot", "robots", "giant robots"), ("メカ", "ロボット")),
    "Super Power": ("超能力", ("super power", "superpower", "superpowers", "super powers", "superhero", "superheroes"), ("超能力", "ヒーロー")),
    "Military": ("ミリタリー", ("military", "war", "army", "soldiers"), ("ミリタリー", "戦争", "軍隊", "軍事")),
    "Harem": ("ハーレム", ("harem",), ("ハーレム",)),
    "Reverse Harem": ("逆ハーレム", ("reverse harem",), ("逆ハーレム", "逆ハー")),
    "Reincarnation": ("転生", ("reincarnation", "reincarnated"), ("転生",)),
    "Vampire": ("吸血鬼", ("vampire", "vampires"), ("吸血鬼", "ヴァンパイア", "バンパイア")),
    "Team Sports": ("チームスポーツ", ("team sports", "baseball", "basketball", "soccer", "football", "volleyball"), ("野球", "バスケ", "サッカー", "バレー")),
    "Combat Sports": ("格闘スポーツ", ("combat sports", "boxing", "wrestling"), ("ボクシング", "プロレス")),
    "Music": ("音楽", ("music", "band", "bands", "musician"), ("音楽", "バンド", "ミュージック")),
    "Time Travel": ("タイムトラベル", ("time travel", "time-travel", "time loop"), ("タイムトラベル", "タイムリープ", "タイムループ")),
    "Detective": ("探偵", ("detective", "detectives", "crime solving"), ("探偵", "刑事")),
    "Parody": ("パロディ", ("parody", "parodies"), ("パロディ",)),
    "Gore": ("グロ", ("gore", "gory", "bloody", "violent"), ("グロ", "流血")),
    "Childcare": ("子育て", ("childcare", "parenting", "raising a child"), ("子育て", "育児")),
    "Strategy Game": ("頭脳戦", ("strategy", "strategy game", "chess", "shogi", "go game"), ("頭脳戦", "将棋", "囲碁", "戦略")),
    "Iyashikei": ("癒し系", ("iyashikei", "healing", "relaxing", "calming"), ("癒し", "癒やし")),
    "Gag Humor": ("ギャグ", ("gag", "gag humor", "slapstick"), ("ギャグ漫画",)),
    "Samurai": ("侍", ("samurai", "ronin", "swordsman"), ("侍", "サムライ", "剣客")),
    "Delinquents": ("不良", ("delinquents", "delinquent", "yankee", "gangs"), ("不良", "ヤンキー")),
    "Workplace": ("お仕事", ("workplace", "office", "work life"), ("お仕事", "職場", "会社員")),
    "Mahou Shoujo": ("魔法少女", ("magical girl", "magical girls", "mahou shoujo"), ("魔法少女",)),
    "Space": ("宇宙", ("space", "outer space", "space opera"), ("宇宙",)),
    "Villainess": ("悪役令嬢", ("villainess",), ("悪役令嬢",)),
    "Survival": ("サバイバル", ("survival", "death game", "death games"), ("サバイバル", "デスゲーム")),
    "Medical": ("医療", ("medical", "doctor", "doctors", "hospital"), ("医療", "医者", "病院")),
    "Organized Crime": ("任侠", ("organized crime", "yakuza", "mafia", "gangster"), ("ヤクザ", "極道", "任侠", "マフィア")),
    "Showbiz": ("芸能", ("showbiz", "show business", "entertainment industry", "idol", "idols"), ("芸能", "アイドル")),
    "Performing Arts": ("舞台芸術", ("performing arts", "theater", "theatre", "acting", "dance"), ("演劇", "舞台", "ダンス")),
    "Pets": ("ペット", ("pets", "pet", "cats", "dogs", "animals"), ("ペット", "猫", "犬", "動物")),
    "Otaku Culture": ("オタク文化", ("otaku",), ("オタク",)),
    "High Stakes Game": ("ギャンブル", ("gambling", "high stakes"), ("ギャンブル", "賭け")),
    "Visual Arts": ("美術", ("visual arts", "painting", "drawing"), ("美術", "絵画")),
    "Video Game": ("ゲーム", ("video game", "video games", "gaming", "vrmmo"), ("ゲーム",)),
    "Love Polygon": ("三角関係", ("love triangle", "love polygon"), ("三角関係",)),
    "CGDCT": ("かわいい女の子", ("cute girls", "cgdct", "cute"), ("かわいい", "可愛い")),
    "Adult Cast": ("大人の登場人物", ("adult cast", "adults", "adult characters"), ("大人",)),
    "Anthropomorphic": ("擬人化", ("anthropomorphic", "talking animals"), ("擬人化",)),
    "Crossdressing": ("女装・男装", ("crossdressing", "cross-dressing"), ("女装", "男装")),
    "Urban Fantasy": ("現代ファンタジー", ("urban fantasy",), ("現代ファンタジー",)),
    "Racing": ("レース", ("racing", "cars"), ("レース", "車")),
    "Memoir": ("エッセイ", ("memoir", "autobiography", "essay manga"), ("エッセイ", "自伝")),
    "Educational": ("学習", ("educational", "learn"), ("学習", "教育")),
}

# phrases that name several tags at once (English and Japanese)
PHRASES: dict[str, tuple[str, ...]] = {
    "dark fantasy": ("Fantasy", "Horror"),
    "ダークファンタジー": ("Fantasy", "Horror"),
    "romcom": ("Romance", "Comedy"),
    "rom-com": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"),
    "ラブコメ": ("Romance", "Comedy"),
    "sports manga": ("Sports",),
    "battle shounen": ("Action", "Shounen"),
    "バトル漫画": ("Action",),
}

_NEG_BEFORE_EN = re.compile(r"(?:\bno|\bnot|\bwithout|\bexcept|\bhate|\bdislike|\bnothing|\bavoid|\bbut not)\s+(?:\w+\s+){0,2}$", re.I)
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_NEG_AFTER_JA = re.compile(r"^(?:系|もの|物|作品|漫画|マンガ)?(?:は|が|も)?(?:苦手|嫌い|きらい|無理|以外|なし|抜き|じゃない|ではない)")


def _keyword_patterns() -> list[tuple[re.Pattern[str], tuple[str, ...], bool]]:
    """Compiled (pattern, tags, is_japanese) triples, longest keyword first so '魔法少女' wins over '少女'."""
    pairs: list[tuple[str, tuple[str, ...], bool]] = []
    for tag, (_, en, ja) in TAGS.items():
        pairs += [(w, (tag,), False) for w in en] + [(w, (tag,), True) for w in ja]
    for phrase, tags in PHRASES.items():
        pairs.append((phrase, tags, bool(_JA_CHAR.search(phrase))))
    pairs.sort(key=lambda p: -len(p[0]))
    out = []
    for word, tags, is_ja in pairs:
        if is_ja:
            out.append((re.compile(re.escape(word), re.I), tags, True))
        else:
            out.append((re.compile(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", re.I), tags, False))
    return out


_PATTERNS = _keyword_patterns()


@lru_cache(maxsize=4096)
def parse_liked_text(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Map free text (English or Japanese) to catalog tags: ``(wanted, unwanted)``, each in order of mention.

    Matching is case-insensitive; English keywords match on word boundaries, Japanese ones as substrings
    (no spaces in Japanese), longest keyword first, each character consumed once. A keyword preceded by
    "no / not / without / except / hate ..." (English) or followed by "が苦手 / は嫌い / 以外 / なし" (Japanese)
    is unwanted. Examples: "dark fantasy with great art" → (Fantasy, Horror); "ホラーとミステリーが好き" →
    (Horror, Mystery); "恋愛は苦手" → unwanted Romance.
    """
    if not text:
        return (), ()
    taken = [False] * len(text)
    hits: list[tuple[int, int, str, bool]] = []
    for pat, tags, is_ja in _PATTERNS:
        for m in pat.finditer(text):
            if any(taken[m.start():m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            if is_ja:
                negative = bool(_NEG_AFTER_JA.match(text[m.end():m.end() + 12]))
            else:
                negative = bool(_NEG_BEFORE_EN.search(text[max(0, m.start() - 40):m.start()]))
            hits += [(m.start(), n, tag, negative) for n, tag in enumerate(tags)]
    hits.sort()
    wanted = tuple(dict.fromkeys(t for _, _, t, neg in hits if not neg))
    unwanted = tuple(dict.fromkeys(t for _, _, t, neg in hits if neg and t not in wanted))
    return wanted, unwanted


def tag_label(tag: str, locale: str = "en") -> str:
    """Display name of a catalog tag in ``locale`` ("en": the MAL label; "ja": a Japanese label)."""
    if locale == "ja" and tag in TAGS:
        return TAGS[tag][0]
    return tag


def item_tags(item: CatalogItem) -> tuple[str, ...]:
    """Genres, then themes, then demographic of a catalog item, deduplicated (one tag namespace)."""
    return tuple(dict.fromkeys((*item.genres, *item.themes, *((item.demographic,) if item.demographic else ()))))


# ---- ratings -----------------------------------------------------------------------------------

class Rating(NamedTuple):
    """One review score: hashed MAL user, MAL manga id, score 1-10."""

    user_id: str
    mal_id: int
    score: int


def load_ratings(path: Path = DEFAULT_RATINGS) -> list[Rating]:
    """Read ``user_id, mal_id, score[, helpful_votes]`` rows (plain or .gz CSV) in file order."""
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rb") as fh:
        reader = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""))
        return [Rating(r["user_id"], int(r["mal_id"]), int(r["score"])) for r in reader]
