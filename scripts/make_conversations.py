"""Write data/eval/conversations/{dev,test}.jsonl: scripted multi-turn conversations in English and Japanese.

Usage: python scripts/make_conversations.py   (deterministic; rewrites both files)

Every entity and fact comes from the shipped records: titles, authors, volumes, status, price and stock from
the catalog (tools.backends.catalog.load_catalog), orders and their owners from tools.backends.seed.build_seed,
policy facts as regexes that are checked to match data/policies/<lang>/*.md. Facts that depend on the run's
clock (order dates) or on what an earlier turn listed (ordinals) are stored as specs the runner resolves
(bench/eval_conversations.py). The phrasings below were written for this eval and are checked against the
router's training templates and real utterances (``template_overlaps``): none may coincide.

Split: dev and test share no phrasing (each pool's even entries are dev, odd ones test) and no title or author
(chosen by CRC32 parity of the mal_id / name); policies' countries and payment methods alternate likewise.
"""

from __future__ import annotations

import json
import random
import re
import sys
import zlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_conversations import (  # noqa: E402
    DATA_DIR,
    ITEM_FACTS,
    can_cancel_fact,
    cancelled_done_fact,
    kept_fact,
)

SEED = 18

# ------------------------------------------------------------------------------------------- phrasings
# Each pool: even index → dev, odd index → test. {t} title, {a} author, {n} volume number, {c} country,
# {m} payment method.
P = {
    "search": {
        "en": ["hey, is {t} something you carry?", "I'm hunting for {t}", "got any {t}?", "I want to buy {t}",
               "do you guys sell {t}?", "{t} — is that in your shop?", "I'm after a copy of {t}",
               "can I get {t} here?", "searching for {t}, any luck?", "does your store stock {t} at all?",
               "would you happen to have {t}?", "need {t}, is it here?"],
        "ja": ["{t}って置いてますか？", "{t}を探してるんだけど", "{t}ある？", "{t}を一冊買いたいんですけど", "{t}は取り扱ってますか",
               "{t}、そちらで売ってますか？", "{t}が欲しいです", "{t}を読みたいんですが、ありますか", "{t}は販売していますか",
               "{t}ってここで買える？", "{t}が買えるか知りたい", "{t}置いてあったりします？"],
    },
    "author": {
        "en": ["who wrote it?", "who's the author?", "and the mangaka?", "who created this one?", "who is it by?",
               "name of the author?", "who drew that?", "by whom?", "who's behind it?", "and who made it?"],
        "ja": ["作者は誰？", "それ、誰が描いてるの？", "この作品の著者を教えて", "作者さんは？", "誰の作品ですか",
               "描いたのは誰？", "作家は誰ですか？", "これの作者って？", "誰が書いた漫画？", "作者名を知りたい"],
    },
    "volumes": {
        "en": ["how many volumes are out?", "how many books in the series?", "how long is it, in volumes?",
               "how many tankobon does it have?", "what's the volume count?", "how many volumes in total?",
               "how many volumes does that run to?", "how many books is it?"],
        "ja": ["何巻まで出てる？", "全部で何巻？", "巻数はどのくらい？", "何冊ある？", "今何巻まで？", "全何巻ですか",
               "それって何巻まであるの？", "この作品は何巻まで出ていますか"],
    },
    "status": {
        "en": ["is it finished?", "has it ended yet?", "is the series complete?", "still ongoing?",
               "is it done or still running?", "has the story wrapped up?", "is that one over already?",
               "did it finish?"],
        "ja": ["完結してる？", "もう終わってる？", "この作品は完結済み？", "連載は続いてますか", "最終巻は出てますか",
               "まだ連載中？", "それはもう完結した？", "終わった作品ですか"],
    },
    "price": {
        "en": ["how much is it?", "what does a volume cost?", "price?", "how much per volume?", "what's it going for?",
               "and the cost?", "how much would one volume be?", "what do you charge for it?"],
        "ja": ["いくら？", "1冊いくらですか", "値段は？", "価格を教えて", "おいくらですか", "1巻あたりの値段は？",
               "それっていくらするの？", "この作品の価格は？"],
    },
    "stock": {
        "en": ["is it in stock?", "can you ship it now or is it sold out?", "do you have copies right now?",
               "any available?", "is it available at the moment?", "got it on the shelf?", "in stock right now?",
               "can I order it today?"],
        "ja": ["在庫は？", "今在庫ありますか", "すぐ買える？", "在庫あるかな", "品切れしてない？", "在庫状況は？",
               "それ、在庫ある？", "この作品は在庫ありますか"],
    },
    "title_ja": {
        "en": ["what's the Japanese title?", "what is it called in Japanese?", "original Japanese name?",
               "how is it written in Japanese?", "what's its name in Japan?", "the Japanese name please"],
    },
    "title_en": {
        "ja": ["英語のタイトルは？", "英題は何ですか", "英語だと何ていうの？", "海外版のタイトルは？", "英語名を教えて",
               "英語タイトルってある？"],
    },
    "about": {
        "en": ["what's it about?", "what's the story?", "give me a quick summary", "what happens in it?", "plot?",
               "tell me what it's about", "what's the premise?", "what is that one about?"],
        "ja": ["どんな話？", "あらすじは？", "内容を教えて", "どういうストーリー？", "どんな作品ですか",
               "ざっくりどんな話か教えて", "それってどんな内容？", "この作品のあらすじを教えて"],
    },
    "genres": {
        "en": ["what genre is it?", "what kind of manga is it?", "which genres?", "what category does it fall under?",
               "genre?", "what sort of story is it, genre-wise?"],
        "ja": ["ジャンルは？", "どんなジャンル？", "何系の漫画？", "ジャンルを教えて", "カテゴリーは何ですか",
               "どういう系統の作品？"],
    },
    "volume_n": {
        "en": ["is volume {n} available?", "do you have vol {n} in stock?", "can I get volume {n}?",
               "what about book {n}, in stock?", "volume {n} — can I buy it now?", "is vol. {n} on hand?"],
        "ja": ["{n}巻はある？", "{n}巻の在庫ありますか", "{n}巻だけ買える？", "第{n}巻は在庫ありますか",
               "{n}巻って今買えますか", "{n}巻は在庫ある？"],
    },
    "who_wrote": {
        "en": ["who actually wrote {t}?", "who's the author of {t}?", "who drew {t}?", "tell me who made {t}",
               "{t} is by whom?", "who is behind {t}?", "which mangaka did {t}?", "who created {t}?"],
        "ja": ["{t}って誰の作品でしたっけ？", "{t}って誰が描いたの？", "{t}の著者を知りたい", "{t}を描いた人は誰ですか",
               "{t}の作者を教えてください", "{t}は誰の漫画？", "{t}の作者って誰だっけ", "{t}を書いたのは誰？"],
    },
    "is_finished": {
        "en": ["is {t} complete?", "has {t} ended?", "{t} — is it finished?", "did {t} wrap up yet?",
               "is {t} still coming out?", "has {t} finished its run?"],
        "ja": ["{t}は完結してますか", "{t}ってもう終わった？", "{t}は完結済み？", "{t}はまだ連載してる？",
               "{t}、完結した？", "{t}は終わってる作品？"],
    },
    "how_many_volumes": {
        "en": ["how many volumes has {t} got in total?", "how many books is {t}?", "{t}: how many volumes?",
               "what's the volume count for {t}?", "how long is {t} in volumes?", "how many tankobon of {t} exist?"],
        "ja": ["{t}は何巻まで？", "{t}って全部で何巻？", "{t}の巻数は？", "{t}って全部で何冊あるの？", "{t}は今何巻まで出てるんでしょう",
               "{t}って何冊ある？"],
    },
    "by_author": {
        "en": ["anything by {a}?", "what do you have from {a}?", "show me {a}'s manga",
               "I'm a fan of {a}, what of theirs do you stock?", "books by {a}", "list {a}'s works",
               "which titles did {a} write?", "got any works from {a}?", "what has {a} made that you sell?",
               "{a} manga, please"],
        "ja": ["{a}の漫画", "{a}の作品ある？", "{a}先生の本を探してます", "{a}が描いた漫画を見せて", "{a}の作品をまとめて見たい",
               "{a}の漫画って置いてる？", "{a}の作品を全部見たい", "{a}が書いた作品は？", "{a}の本が読みたい",
               "{a}作品を探しています"],
    },
    "like": {
        "en": ["got anything in the vein of {t}?", "I loved {t}, what should I read next?", "more in the vein of {t}",
               "recommend me titles similar to {t}", "if I liked {t} what else would I enjoy?",
               "what's comparable to {t}?", "any manga that feel like {t}?", "suggest something along the lines of {t}",
               "finished {t}, need more like it", "what would a {t} fan enjoy?"],
        "ja": ["{t}みたいな作品", "{t}に似た漫画ある？", "{t}が好きなんだけど、他におすすめは？", "{t}っぽい作品を教えて",
               "{t}が面白かったので似たのを読みたい", "{t}系の漫画でおすすめは", "{t}と似てる作品を探してます",
               "{t}にハマった人向けの漫画ってある？", "{t}みたいなのをもっと読みたい", "{t}に近い雰囲気の作品ある？"],
    },
    "ordinal": {  # (text, k)
        "en": [("the second one", 2), ("number 2, please", 2), ("the third one", 3), ("the first one", 1),
               ("tell me about #2", 2), ("more on the third", 3), ("the top one", 1), ("let's look at number three", 3),
               ("the 2nd one", 2), ("the first of those", 1)],
        "ja": [("2つ目", 2), ("2番目の作品", 2), ("3番目のやつ", 3), ("1つ目を詳しく", 1), ("2番のを見せて", 2),
               ("3つ目について教えて", 3), ("一番上の", 1), ("三つ目の作品", 3), ("二番目のは？", 2), ("最初のやつ", 1)],
    },
    "orders": {
        "en": ["any news on where my parcel is?", "what's happening with my orders?", "any update on my purchases?",
               "check my orders please", "has my stuff shipped?", "show me what I've ordered",
               "I'd like to see my order status", "where are my packages?", "what did I order recently?",
               "status of my orders?"],
        "ja": ["注文はどうなってる？", "注文状況を確認したい", "私の注文を見せて", "頼んだ本はどうなりましたか",
               "発送状況を知りたいです", "注文履歴を教えて", "購入したものの状況は？", "自分の注文を確認できる？",
               "注文した漫画の状況を教えて", "ご注文一覧を見たい"],
    },
    "most_recent": {
        "en": ["the most recent one", "the latest one", "the newest order", "the last one I placed", "my latest",
               "the one I placed most recently"],
        "ja": ["一番新しいの", "最新の注文", "最後に頼んだやつ", "直近の注文", "いちばん最近のもの", "最後の注文"],
    },
    "order_with": {
        "en": ["the one with {t} in it", "the order that has {t}", "the {t} order", "the one where I bought {t}"],
        "ja": ["{t}が入ってる注文", "{t}を頼んだやつ", "{t}の注文", "{t}を買った注文"],
    },
    "arrival": {
        "en": ["when will it arrive?", "when does it get here?", "delivery date?", "when can I expect it?",
               "how soon will it come?", "ETA?", "when's it landing?", "what day will it be delivered?"],
        "ja": ["いつ届く", "到着はいつ？", "いつ頃届きますか", "お届け予定日は？", "何日に着く？", "配達はいつになりますか",
               "それはいつ届くの？", "届くのはいつ？"],
    },
    "tracking": {
        "en": ["what's the tracking number?", "can I get the tracking code?", "tracking?", "how do I track it?",
               "give me the tracking info", "is there a tracking number for it?"],
        "ja": ["追跡番号は？", "問い合わせ番号を教えて", "追跡できる？", "配送の追跡番号ください", "追跡番号を知りたい",
               "荷物の追跡番号は？"],
    },
    "can_cancel": {
        "en": ["can I cancel it?", "is it still possible to cancel?", "could I call it off?", "am I able to cancel that?",
               "can that one still be cancelled?", "is cancelling an option?"],
        "ja": ["キャンセルできる？", "まだ取り消せますか", "キャンセルって可能？", "これ取り消しできる？",
               "今からでもキャンセルできますか", "注文をやめることはできる？"],
    },
    "can_return": {
        "en": ["can I send it back?", "is it returnable?", "could I return it?", "can I still get a refund on it?"],
        "ja": ["返品できる？", "返品は可能ですか", "これ返せますか", "まだ返品できますか"],
    },
    "do_cancel": {
        "en": ["please cancel it", "cancel that order", "go ahead and cancel it", "I want to cancel this one",
               "call it off, please", "cancel it for me"],
        "ja": ["キャンセルしてください", "それを取り消して", "この注文キャンセルで", "キャンセルをお願いします",
               "取り消しお願いします", "やっぱりキャンセルしたい"],
    },
    "do_return": {
        "en": ["I'd like to return it", "please start a return for it", "return it please", "I want to send it back"],
        "ja": ["返品したいです", "返品をお願いします", "これを返品して", "返品の手続きをしたい"],
    },
    "cart_add_it": {
        "en": ["pop volume {n} of it into my cart", "I'll grab vol {n} of that one, put it in the cart",
               "stick volume {n} in my basket", "ok, volume {n} of it into the cart please",
               "can you put vol {n} of this in my cart?", "add number {n} of that series to the cart for me"],
        "ja": ["それの{n}巻をカートへお願い", "じゃあ{n}巻をカートに入れといて", "この作品の{n}巻、カートに追加で",
               "{n}巻をカートに入れてもらえますか", "それ{n}巻だけカートにお願いします", "その{n}巻をカートに追加してほしい"]},
    "cart_two": {
        "en": ["actually make that 2 copies", "change it to 2 copies", "2 copies of it, not 1",
               "I need 2 copies of that", "bump it up to 2 copies", "let's do 2 copies instead"],
        "ja": ["やっぱり2冊にして", "2冊に変更して", "数量を2冊にしてください", "それ2冊にしてほしい",
               "2冊にしてもらえる？", "冊数を2冊に変えて"]},
    "cart_view": {
        "en": ["what have I got in my cart now?", "show me the cart", "what's sitting in my basket?",
               "can I see my cart?", "list what's in the cart", "how does my cart look?"],
        "ja": ["今カートに何が入ってる？", "カートの中を確認したい", "カート見せてもらえますか", "カートに入ってるもの教えて",
               "いまのカートはどうなってる？", "カートを表示して"]},
    "cart_checkout": {
        "en": ["ok let's check out", "I think I'm done, let's check out now", "take me to the checkout", "time to check out",
               "checkout please", "let's wrap this up and check out"],
        "ja": ["レジに進みます", "会計に進んで", "これで購入手続きして", "そろそろチェックアウトで", "レジへお願いします",
               "会計をお願いしたいです"]},
    "cart_no": {
        "en": ["hmm, no, not yet", "no, hold off", "no, don't order it yet", "wait, no", "not now, no", "no, cancel that"],
        "ja": ["いいえ、まだです", "やっぱりやめておく", "いや、まだ注文しない", "いいえ、今はいいです", "今回はやめます",
               "ちょっと待って、いいえ"]},
    "cart_arrival": {
        "en": ["when should it get here?", "so when do my books arrive?", "how soon will it come?", "what's the delivery date?",
               "when does it arrive?", "when can I expect it?"],
        "ja": ["いつ届きますか", "届くのはいつ？", "到着はいつ頃？", "いつ頃届く？", "お届け日はいつですか", "いつ着く？"]},
    "yes": {"en": ["yes, go ahead with it", "yes, do it", "I confirm, do it", "yep, go ahead", "sure", "ok, that's fine, proceed"],
            "ja": ["はい", "お願いします", "はい、お願いします", "うん", "ええ、お願い", "確定で"]},
    "no": {"en": ["no, keep it", "actually no", "never mind, leave it as it is", "no thanks, I'll keep it", "nope, don't do that", "no, leave it"],
           "ja": ["いいえ", "やっぱりやめます", "いや、そのままで", "いいえ、結構です", "やめておきます", "キャンセルしないで"]},
    "ship_to": {
        "en": ["do you ship to {c}?", "can you deliver to {c}?", "I live in {c}, can I order?",
               "is shipping to {c} possible?", "would you send a parcel to {c}?", "do you deliver as far as {c}?"],
        "ja": ["{c}に発送できますか", "{c}まで送ってもらえる？", "{c}在住ですが注文できますか", "{c}への配送はある？",
               "{c}にも届けてくれますか", "{c}へ送ることは可能？"],
    },
    "ship_to_followup": {
        "en": ["what about {c}?", "and {c}?", "how about {c} then?", "{c} too?"],
        "ja": ["{c}は？", "{c}はどう？", "じゃあ{c}は？", "{c}も大丈夫？"],
    },
    "pay_with": {
        "en": ["can I pay with {m}?", "do you take {m}?", "is {m} accepted?", "I'd like to use {m} at checkout, ok?",
               "will {m} work for paying?", "{m} ok for payment?"],
        "ja": ["{m}で払える？", "{m}は使えますか", "支払いに{m}って使える？", "{m}払いに対応してますか", "{m}で決済できますか",
               "{m}での支払いは可能？"],
    },
    "policy": {  # (key, text); facts in POLICY_FACTS
        "en": [("returns_window", "how long do I have to send something back?"),
               ("returns_window", "what's the deadline for returns?"),
               ("domestic_fee", "how much does delivery within Japan cost?"),
               ("domestic_fee", "what's the postage for a normal order here in Japan?"),
               ("free_threshold", "at what amount does shipping become free?"),
               ("free_threshold", "is there a minimum spend for free postage?"),
               ("cancel_fee", "will I be charged for cancelling?"),
               ("cancel_fee", "any penalty if I cancel an order?"),
               ("ems_time", "how long does EMS take to reach overseas?"),
               ("ems_time", "international express delivery, how many days?"),
               ("konbini_fee", "is there an extra charge for paying at a convenience store?"),
               ("konbini_fee", "what's the konbini surcharge?")],
        "ja": [("returns_window", "返品は何日以内ならできますか"), ("returns_window", "返品の期限っていつまで？"),
               ("domestic_fee", "国内の送料はいくらですか"), ("domestic_fee", "日本国内に送ると送料いくら？"),
               ("free_threshold", "いくら以上買えば送料無料になる？"), ("free_threshold", "送料がタダになる条件は？"),
               ("cancel_fee", "キャンセルするとお金かかりますか"), ("cancel_fee", "注文を取り消したら手数料は取られる？"),
               ("ems_time", "EMSだと海外まで何日かかる？"), ("ems_time", "海外へのEMSのお届け日数を教えて"),
               ("konbini_fee", "コンビニで払うと手数料はいくら？"), ("konbini_fee", "コンビニ決済の手数料ってありますか")],
    },
    "oos": {
        "en": ["how many moons does Jupiter have?", "who won the football world cup in 2018?",
               "what's the capital of Australia?", "how tall is Mount Fuji?", "find me the height of Mount Everest",
               "what year did the Berlin wall fall?", "how many bones are in the human body?",
               "who painted the Mona Lisa?", "look up who discovered penicillin", "can you explain how photosynthesis works?",
               "search for the distance between Earth and Mars", "who invented the telephone?",
               "what's the boiling point of water in fahrenheit?", "how many countries are in Africa?"],
        "ja": ["木星の衛星はいくつある？", "2018年のワールドカップで優勝した国は？", "オーストラリアの首都はどこ？",
               "富士山の高さは？", "エベレストの高さを調べて", "ベルリンの壁が崩壊したのは何年？", "人間の骨は何本ある？",
               "モナリザを描いたのは誰？", "ペニシリンを発見した人を検索して", "光合成の仕組みを説明して",
               "地球から火星までの距離を調べて", "電話を発明したのは誰？", "水の沸点は華氏で何度？", "アフリカには国がいくつある？"],
    },
    "hello": {"en": ["hello there, anyone around?", "good evening to the manga shop", "hey, how are things at the shop today?",
                     "morning!", "hi, anyone there?", "hiya, just popping in"],
              "ja": ["こんにちは、ちょっといいですか", "こんばんは、お邪魔します", "おはようございます、初めて来ました", "どうもー",
                     "やあ、元気？", "はじめまして、よろしくお願いします"]},
    "thanks": {"en": ["thanks, that's all", "you've been helpful, cheers", "great, thank you", "perfect, thanks a lot",
                      "ok cool, that helped, thanks", "that helps, ty"],
               "ja": ["ありがとう、助かりました", "ありがとうございました！", "了解、ありがとう", "助かります、どうも",
                      "わかりました、ありがとう", "サンキュー"]},
    "switch_back": {  # a topic switch back to a new title, asking a direct fact
        "en": ["ok, different question: is {t} finished?", "switching topics — has {t} ended?",
               "another thing, is {t} complete?", "also, {t}: is it done?"],
        "ja": ["ところで、{t}は完結してる？", "話変わるけど、{t}って終わった？", "あと、{t}は完結済みですか",
               "別件で、{t}はもう完結しましたか"],
    },
}

# Policy facts: regex alternatives per language; each must match that language's policy text.
POLICY_FACTS = {
    "returns_window": {"en": [r"30 days"], "ja": [r"30日"]},
    "domestic_fee": {"en": [r"¥\s?350", r"350 yen"], "ja": [r"350円", r"¥\s?350"]},
    "free_threshold": {"en": [r"¥\s?3,?000", r"3,?000 yen"], "ja": [r"3,?000円", r"¥\s?3,?000"]},
    "cancel_fee": {"en": [r"no cancellation fee", r"free of charge", r"without a fee"],
                   "ja": [r"キャンセル料はかかりません", r"無料でキャンセル", r"手数料はかかりません"]},
    "ems_time": {"en": [r"3[–-]7 days"], "ja": [r"3[〜~-]7日"]},
    "konbini_fee": {"en": [r"¥\s?190", r"190 yen"], "ja": [r"190円", r"¥\s?190"]},
}
SHIP_LISTED = [("Germany", "ドイツ"), ("Canada", "カナダ"), ("Australia", "オーストラリア"), ("Brazil", "ブラジル"),
               ("France", "フランス"), ("Singapore", "シンガポール"), ("Sweden", "スウェーデン"), ("Mexico", "メキシコ"),
               ("Italy", "イタリア"), ("Taiwan", "台湾"), ("the Netherlands", "オランダ"), ("Poland", "ポーランド"),
               ("New Zealand", "ニュージーランド"), ("Spain", "スペイン"), ("South Korea", "韓国"), ("Norway", "ノルウェー")]
SHIP_UNLISTED = [("Argentina", "アルゼンチン"), ("Egypt", "エジプト"), ("Russia", "ロシア"), ("Kenya", "ケニア"),
                 ("Turkey", "トルコ"), ("Chile", "チリ"), ("Nigeria", "ナイジェリア"), ("Peru", "ペルー")]
SHIP_UNLISTED_FACT = {"en": [r"(?:cannot|can't|don't|do not|unable to) ship", r"not (?:listed|on (?:the|our) list)",
                             r"(?:cannot|can't|don't|do not) deliver"],
                      "ja": [r"発送できません", r"記載のない", r"対象外", r"お届けできません", r"発送しておりません"]}
PAY_NOT = [("PayPal", "PayPal"), ("Bitcoin", "ビットコイン"), ("Apple Pay", "Apple Pay"), ("Google Pay", "Google Pay"),
           ("LINE Pay", "LINE Pay"), ("Alipay", "Alipay"), ("Amazon Pay", "Amazon Pay"), ("WeChat Pay", "WeChat Pay")]
PAY_YES = [("PayPay", "PayPay"), ("JCB", "JCB"), ("Visa", "Visa"), ("bank transfer", "銀行振込"),
           ("American Express", "American Express"), ("konbini payment", "コンビニ払い")]


def pay_not_fact(m: str, lang: str) -> list[str]:
    """The method ``m`` is not accepted."""
    e = re.escape(m)
    if lang == "en":
        return [rf"(?:do not|don't|not|cannot) accept[^.]*{e}", rf"{e}[^.]*not (?:accepted|available|supported)"]
    return [rf"{e}[^。]*(?:ご利用いただけません|使えません|ご利用になれません|対応していません|お使いいただけません)"]


def pay_yes_fact(m: str, lang: str) -> list[str]:
    """The method ``m`` is accepted (named in the accepted-methods passage)."""
    e = re.escape(m)
    if lang == "en":
        return [rf"(?<!not )accept[^.]*{e}", rf"{e}[^.]*(?:accepted|available|can be used)"]
    return [rf"{e}[^。]*(?:ご利用いただけます|使えます|ご利用になれます|お使いいただけます)"]


# ------------------------------------------------------------------------------------------- helpers
_JA = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")


def yen_fact(n: int) -> str:
    """A regex for the amount ``n`` in yen as an answer writes it ("¥1,496", "1496円")."""
    digits = f"{n:,}".replace(",", ",?")
    return rf"(?<![\d,]){digits}(?![\d])"


def split_of(key: str) -> str:
    """dev or test by CRC32 parity of a stable key."""
    return "dev" if zlib.crc32(key.encode()) % 2 == 0 else "test"


class Pools:
    """Phrasing pools for one split: each pool's entries of the split's parity, drawn in rotation."""

    def __init__(self, split: str, rng: random.Random):
        self.parity = 0 if split == "dev" else 1
        self.rng = rng
        self.order: dict[tuple[str, str], list] = {}
        self.pos: dict[tuple[str, str], int] = defaultdict(int)

    def get(self, name: str, lang: str):
        key = (name, lang)
        if key not in self.order:
            self.order[key] = [x for i, x in enumerate(P[name][lang]) if i % 2 == self.parity]
            self.rng.shuffle(self.order[key])
        x = self.order[key][self.pos[key] % len(self.order[key])]
        self.pos[key] += 1
        return x


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", s.lower())).strip()


def en_title(it, rng: random.Random) -> str:
    if it.title_en and it.title_en != it.title and rng.random() < 0.7:
        return it.title_en
    return it.title


def ja_title(it) -> str | None:
    return it.title_ja if it.title_ja and _JA.search(it.title_ja) else None


def plausible(catalog, query: str) -> list[int]:
    """mal_ids whose title, English/Japanese title or a synonym contains the query (normalised): the titles a
    search for ``query`` may list."""
    q = norm(query)
    out = []
    for it in catalog.items:
        fields = [it.title, it.title_en, it.title_ja, *it.synonyms]
        if any(q and q in norm(f) for f in fields if f):
            out.append(it.mal_id)
    return out


def item_fact(it, field: str) -> tuple[list[str], str]:
    return ITEM_FACTS[field](it), f"catalog:{it.mal_id}:{field}"


def natural_romaji(name: str) -> str:
    """The spelling customers type: long vowels unmarked (Itou → Ito, Yuuki → Yuki, Kentarou → Kentaro)."""
    return re.sub(r"ou\b", "o", name.replace("uu", "u").replace("ou ", "o ")).replace("Ou", "O")


# ------------------------------------------------------------------------------------------- scenarios
class Builder:
    def __init__(self, catalog, seed_data, split: str, lang: str):
        self.c, self.split, self.lang = catalog, split, lang
        self.rng = random.Random(f"{SEED}:{split}:{lang}")
        self.p = Pools(split, self.rng)
        self.n = 0
        pop = [it for it in catalog.items if it.media_type == "Manga"][:400]
        self.titles = [it for it in pop if split_of(f"t{it.mal_id}") == split and it.authors and it.synopsis
                       and (lang == "en" or ja_title(it))]
        self.rng.shuffle(self.titles)
        self.tpos = 0
        by_author = defaultdict(list)
        for it in catalog.items:
            for a in it.authors:
                by_author[a].append(it.mal_id)
        self.by_author = by_author
        self.ja_name = {}
        for it in catalog.items:
            if it.authors_ja and len(it.authors_ja) == len(it.authors):
                for a, j in zip(it.authors, it.authors_ja):
                    self.ja_name.setdefault(a, j)
        pop_authors = []
        for it in pop:
            for a in it.authors[:1]:
                if a not in pop_authors and 3 <= len(by_author[a]) <= 40 and split_of(f"a{a}") == split:
                    if lang == "en" or a in self.ja_name:  # a Japanese request names the author in Japanese
                        pop_authors.append(a)
        self.authors = pop_authors
        self.rng.shuffle(self.authors)
        self.apos = 0
        users = {"en": ("u_ben", "u_chloe"), "ja": ("u_aiko", "u_daichi")}[lang]
        self.users = users
        self.orders = {u: sorted([o for o in seed_data.orders if o.user_id == u], key=lambda o: (o.created_at, o.order_id),
                                 reverse=True) for u in users}
        self.convs: list[dict] = []

    # -- utilities
    def title(self):
        it = self.titles[self.tpos % len(self.titles)]
        self.tpos += 1
        return it

    def author(self):
        a = self.authors[self.apos % len(self.authors)]
        self.apos += 1
        return a

    def tname(self, it) -> str:
        return en_title(it, self.rng) if self.lang == "en" else ja_title(it)

    def conv(self, topic: str, turns: list[dict], user: str | None = None) -> None:
        self.n += 1
        cid = f"{self.split}-{self.lang}-{self.n:03d}"
        self.convs.append({"id": cid, "lang": self.lang, "user_id": user or f"guest_{cid}", "topic": topic,
                           "turns": turns})

    def turn(self, text: str, followup: bool = False, direct: bool = False, fact_from: str | None = None,
             **checks) -> dict:
        checks.setdefault("lang", self.lang)
        t = {"text": text, "checks": {k: v for k, v in checks.items() if v is not None}}
        if followup:
            t["followup"] = True
        if direct:
            t["direct"] = True
        if fact_from:
            t["fact_from"] = fact_from
        return t

    def search_turn(self, it) -> dict:
        name = self.tname(it)
        return self.turn(self.p.get("search", self.lang).format(t=name), intent=["search"], item=it.mal_id,
                         only=plausible(self.c, name))

    def followup_fact(self, it, field: str) -> dict:
        fact, src = item_fact(it, field)
        return self.turn(self.p.get(field, self.lang), followup=True, direct=True, fact_from=src, intent=["search"],
                         item=it.mal_id, fact=fact)

    def fields_for(self, it) -> list[str]:
        fs = ["author", "status", "price", "stock", "genres"]
        if it.num_volumes:
            fs.append("volumes")
        if self.lang == "en" and ja_title(it):
            fs.append("title_ja")
        if self.lang == "ja" and it.title_en and it.title_en != it.title:
            fs.append("title_en")
        try:
            ITEM_FACTS["about"](it)
            fs.append("about")
        except ValueError:
            pass
        return fs

    # -- scenarios
    def title_followups(self):
        it = self.title()
        fields = self.fields_for(it)
        self.rng.shuffle(fields)
        turns = [self.search_turn(it)]
        for f in fields[: self.rng.choice((2, 3, 3))]:
            turns.append(self.followup_fact(it, f))
        if it.num_volumes and it.num_volumes > 2 and self.rng.random() < 0.4:
            n = self.rng.randint(2, it.num_volumes)
            fact, src = item_fact(it, "stock")
            turns.append(self.turn(self.p.get("volume_n", self.lang).format(n=n), followup=True, direct=True,
                                   fact_from=src, intent=["search"], item=it.mal_id, fact=fact))
        self.conv("search_followups", turns)

    def direct_entity(self):
        it = self.title()
        name = self.tname(it)
        kind = self.rng.choice(["who_wrote", "is_finished"] + (["how_many_volumes"] if it.num_volumes else []))
        field = {"who_wrote": "author", "is_finished": "status", "how_many_volumes": "volumes"}[kind]
        fact, src = item_fact(it, field)
        turns = [self.turn(self.p.get(kind, self.lang).format(t=name), direct=True, fact_from=src, intent=["search"],
                           item=it.mal_id, fact=fact)]
        rest = [f for f in self.fields_for(it) if f != field]
        self.rng.shuffle(rest)
        for f in rest[:2]:
            turns.append(self.followup_fact(it, f))
        self.conv("direct_entity", turns)

    def author_list(self, ordinal: bool):
        a = self.author()
        works = self.by_author[a]
        name = a if self.lang == "en" else self.ja_name[a]
        if self.lang == "en" and self.rng.random() < 0.3 and natural_romaji(a) != a:
            name = natural_romaji(a)
        turns = [self.turn(self.p.get("by_author", self.lang).format(a=name), intent=["search"], item=works,
                           only=works)]
        if ordinal:
            text, k = self.p.get("ordinal", self.lang)
            turns.append(self.turn(text, followup=True, intent=["search"], item={"ordinal": k}))
            field = self.rng.choice(["status", "price", "genres", "stock"])
            turns.append(self.turn(self.p.get(field, self.lang), followup=True, direct=True,
                                   fact_from=f"ordinal:{field}", intent=["search"], item={"ref": True},
                                   fact={"ref_field": field}))
        self.conv("author_request" + ("_ordinal" if ordinal else ""), turns)

    def seeded_rec(self, ordinal: bool):
        it = self.title()
        name = self.tname(it)
        turns = [self.turn(self.p.get("like", self.lang).format(t=name), intent=["recommend"], never=[it.mal_id])]
        if ordinal:
            text, k = self.p.get("ordinal", self.lang)
            turns.append(self.turn(text, followup=True, intent=["search", "recommend"], item={"ordinal": k},
                                   never=[it.mal_id]))
            field = self.rng.choice(["author", "status", "price"])
            turns.append(self.turn(self.p.get(field, self.lang), followup=True, direct=True,
                                   fact_from=f"ordinal:{field}", intent=["search", "recommend"], item={"ref": True},
                                   fact={"ref_field": field}))
        self.conv("seeded_recommendation" + ("_ordinal" if ordinal else ""), turns)

    def order_flow(self, i: int):
        user = self.users[i % 2]
        orders = self.orders[user]
        turns = [self.turn(self.p.get("orders", self.lang), intent=["order"], only=[])]
        mode = i % 3
        if mode == 0:
            o = orders[0]
            turns.append(self.turn(self.p.get("most_recent", self.lang), followup=True, intent=["order"],
                                   order=o.order_id))
        elif mode == 1:
            k = 2
            o = orders[k - 1]
            text = {"en": ["the second one", "number two", "the 2nd order", "the second"],
                    "ja": ["2つ目の注文", "2番目", "二つ目", "2番目のやつ"]}[self.lang][(i // 3) % 4]
            turns.append(self.turn(text, followup=True, intent=["order"], order=o.order_id))
        else:
            candidates = [o for o in orders if o.status in ("shipped", "delivered")]
            o = candidates[(i // 3) % len(candidates)]
            it = self.c.get(o.items[0].mal_id)
            tname = (en_title(it, self.rng) if self.lang == "en" else (ja_title(it) or it.title))
            turns.append(self.turn(self.p.get("order_with", self.lang).format(t=tname), intent=["order"],
                                   order=o.order_id))
        asks = ["arrival", "tracking", "can_cancel"] + (["can_return"] if o.status == "delivered" else [])
        self.rng.shuffle(asks)
        for a in asks[:2]:
            turns.append(self.turn(self.p.get(a, self.lang), followup=True, direct=True,
                                   fact_from=f"order:{o.order_id}:{a}", intent=["order"], order=o.order_id,
                                   fact={"order": o.order_id, "order_field": a}))
        self.conv("orders", turns, user)

    def cancel_flow(self, i: int):
        user = self.users[i % 2]
        orders = self.orders[user]
        proc = next(o for o in orders if o.status == "processing")
        turns = [self.turn(self.p.get("orders", self.lang), intent=["order"])]
        if proc is orders[0]:
            turns.append(self.turn(self.p.get("most_recent", self.lang), followup=True, intent=["order"],
                                   order=proc.order_id))
        else:
            it = self.c.get(proc.items[0].mal_id)
            tname = en_title(it, self.rng) if self.lang == "en" else (ja_title(it) or it.title)
            turns.append(self.turn(self.p.get("order_with", self.lang).format(t=tname), intent=["order"],
                                   order=proc.order_id))
        if i % 2 == 0:
            turns.append(self.turn(self.p.get("can_cancel", self.lang), followup=True, direct=True,
                                   fact_from=f"order:{proc.order_id}:can_cancel", intent=["order"],
                                   order=proc.order_id, fact=can_cancel_fact(proc)))
        turns.append(self.turn(self.p.get("do_cancel", self.lang), followup=True, intent=["order"],
                               order=proc.order_id, interrupt="cancel"))
        if (i // 2) % 3 != 2:
            turns.append(self.turn(self.p.get("yes", self.lang), followup=True, intent=["order"],
                                   order=proc.order_id, interrupt=False, fact=cancelled_done_fact(),
                                   fact_from=f"order:{proc.order_id}:cancelled"))
        else:
            turns.append(self.turn(self.p.get("no", self.lang), followup=True, intent=["order"],
                                   interrupt=False, fact=kept_fact(), fact_from=f"order:{proc.order_id}:kept"))
        self.conv("cancellation", turns, user)

    def return_or_refuse(self, i: int):
        user = self.users[i % 2]
        orders = self.orders[user]
        turns = [self.turn(self.p.get("orders", self.lang), intent=["order"])]
        if i % 2 == 0:  # a shipped order cannot be cancelled: no confirmation is asked
            o = next(o for o in orders if o.status == "shipped")
            kind = "do_cancel"
        else:  # a delivered order: a return (confirmation) when in the window, a refusal otherwise
            delivered = [o for o in orders if o.status == "delivered"]
            o = delivered[(i // 2) % len(delivered)]
            kind = "do_return"
        it = self.c.get(o.items[0].mal_id)
        tname = en_title(it, self.rng) if self.lang == "en" else (ja_title(it) or it.title)
        turns.append(self.turn(self.p.get("order_with", self.lang).format(t=tname), intent=["order"],
                               order=o.order_id))
        if kind == "do_cancel":
            turns.append(self.turn(self.p.get("do_cancel", self.lang), followup=True, direct=True, intent=["order"],
                                   order=o.order_id, interrupt=False, fact=can_cancel_fact(o),
                                   fact_from=f"order:{o.order_id}:can_cancel"))
        else:
            turns.append(self.turn(self.p.get("can_return", self.lang), followup=True, direct=True, intent=["order"],
                                   order=o.order_id, fact={"order": o.order_id, "order_field": "can_return"},
                                   fact_from=f"order:{o.order_id}:can_return"))
        self.conv("order_refusal_or_return", turns, user)

    def policy(self, i: int):
        kind = i % 4
        turns = []
        if kind == 0:
            c1, c2 = self.rng.sample([c for j, c in enumerate(SHIP_LISTED) if j % 2 == self.p.parity], 2)
            n1 = c1[0] if self.lang == "en" else c1[1]
            n2 = c2[0] if self.lang == "en" else c2[1]
            turns.append(self.turn(self.p.get("ship_to", self.lang).format(c=n1), intent=["faq"], only=[],
                                   direct=True, fact=[re.escape(n1)], fact_from="policy:shipping:countries"))
            turns.append(self.turn(self.p.get("ship_to_followup", self.lang).format(c=n2), followup=False,
                                   intent=["faq"], only=[], direct=True, fact=[re.escape(n2)],
                                   fact_from="policy:shipping:countries"))
        elif kind == 1:
            c = self.rng.choice([c for j, c in enumerate(SHIP_UNLISTED) if j % 2 == self.p.parity])
            n = c[0] if self.lang == "en" else c[1]
            turns.append(self.turn(self.p.get("ship_to", self.lang).format(c=n), intent=["faq"], only=[],
                                   direct=True, fact=SHIP_UNLISTED_FACT[self.lang],
                                   fact_from="policy:shipping:countries"))
        elif kind == 2:
            m = self.rng.choice([m for j, m in enumerate(PAY_NOT) if j % 2 == self.p.parity or m[0] == "PayPal"])
            name = m[0] if self.lang == "en" else m[1]
            turns.append(self.turn(self.p.get("pay_with", self.lang).format(m=name), intent=["faq"], only=[],
                                   direct=True, fact=pay_not_fact(name, self.lang), fact_from="policy:payment:not"))
            y = self.rng.choice([m for j, m in enumerate(PAY_YES) if j % 2 == self.p.parity])
            yname = y[0] if self.lang == "en" else y[1]
            turns.append(self.turn(self.p.get("pay_with", self.lang).format(m=yname), intent=["faq"], only=[],
                                   direct=True, fact=pay_yes_fact(yname, self.lang), fact_from="policy:payment:yes"))
        else:
            key, text = self.p.get("policy", self.lang)
            turns.append(self.turn(text, intent=["faq"], only=[], direct=True, fact=POLICY_FACTS[key][self.lang],
                                   fact_from=f"policy:{key}"))
            key2, text2 = self.p.get("policy", self.lang)
            turns.append(self.turn(text2, intent=["faq"], only=[], direct=True, fact=POLICY_FACTS[key2][self.lang],
                                   fact_from=f"policy:{key2}"))
        self.conv("policy", turns)

    def out_of_scope(self, i: int):
        turns = []
        if i % 2 == 0:
            turns.append(self.turn(self.p.get("hello", self.lang), intent=["chitchat"], only=[]))
        turns.append(self.turn(self.p.get("oos", self.lang), intent=["out_of_scope"], only=[]))
        if i % 2 == 1:
            turns.append(self.turn(self.p.get("oos", self.lang), intent=["out_of_scope"], only=[]))
        turns.append(self.turn(self.p.get("thanks", self.lang), intent=["chitchat"], only=[]))
        self.conv("out_of_scope", turns)

    def topic_switch(self, i: int):
        a, b = self.title(), self.title()
        turns = [self.search_turn(a)]
        f1 = self.rng.choice(self.fields_for(a))
        turns.append(self.followup_fact(a, f1))
        mode = i % 3
        if mode == 0:  # a policy question in between, then back to "it"
            key, text = self.p.get("policy", self.lang)
            turns.append(self.turn(text, intent=["faq"], only=[], direct=True, fact=POLICY_FACTS[key][self.lang],
                                   fact_from=f"policy:{key}"))
            turns.append(self.followup_fact(a, "price"))
        elif mode == 1:  # out of scope in between, then back to "it"
            turns.append(self.turn(self.p.get("oos", self.lang), intent=["out_of_scope"], only=[]))
            f2 = self.rng.choice([f for f in self.fields_for(a) if f != f1])
            turns.append(self.followup_fact(a, f2))
        # then a new title: the focus moves to it
        bname = self.tname(b)
        fact, src = item_fact(b, "status")
        aname_never = [x for x in dict.fromkeys((a.title, a.title_en, a.title_ja)) if x and x not in {b.title, b.title_en, b.title_ja}
                       and not any(x.lower() in y.lower() for y in (b.title, b.title_en or "", b.title_ja or ""))]
        turns.append(self.turn(self.p.get("switch_back", self.lang).format(t=bname), direct=True, fact_from=src,
                               intent=["search"], item=b.mal_id, fact=fact, never=aname_never))
        f3 = self.rng.choice([f for f in self.fields_for(b) if f != "status"])
        t = self.followup_fact(b, f3)
        t["checks"]["never"] = aname_never
        turns.append(t)
        self.conv("topic_switch", turns)

    def orders_then_search(self, i: int):
        user = self.users[i % 2]
        orders = self.orders[user]
        o = next(o for o in orders if o.status == "shipped")
        it = self.c.get(o.items[0].mal_id)
        tname = en_title(it, self.rng) if self.lang == "en" else (ja_title(it) or it.title)
        b = self.title()
        fact, src = item_fact(b, "author")
        turns = [self.turn(self.p.get("orders", self.lang), intent=["order"]),
                 self.turn(self.p.get("order_with", self.lang).format(t=tname), intent=["order"], order=o.order_id),
                 self.turn(self.p.get("who_wrote", self.lang).format(t=self.tname(b)), direct=True, fact_from=src,
                           intent=["search"], item=b.mal_id, fact=fact),
                 self.turn(self.p.get("arrival", self.lang), followup=True, direct=True,
                           fact_from=f"order:{o.order_id}:arrival", intent=["order"], order=o.order_id,
                           fact={"order": o.order_id, "order_field": "arrival"})]
        self.conv("topic_switch_orders", turns, user)

    def cart_flow(self, i: int):
        """A work, volume n of it into the cart, 2 copies, the cart shown, checkout (interrupt), then yes (an order is
        placed; its arrival is asked) or no (nothing ordered). Facts: the title, the line's and the cart's totals
        from the catalog price."""
        user = self.users[i % 2]
        it = self.title()
        while not (it.stock >= 2 and it.price_jpy):
            it = self.title()
        n = 2 if (it.num_volumes or 0) >= 2 else 1
        price = it.price_jpy
        titles = [re.escape(x) for x in (it.title, it.title_en, it.title_ja) if x]
        turns = [self.search_turn(it),
                 self.turn(self.p.get("cart_add_it", self.lang).format(n=n), followup=True, intent=["cart"],
                           item=it.mal_id, fact=[yen_fact(price)], fact_from=f"catalog:{it.mal_id}:price"),
                 self.turn(self.p.get("cart_two", self.lang), followup=True, intent=["cart"],
                           fact=[yen_fact(2 * price)], fact_from=f"catalog:{it.mal_id}:price"),
                 self.turn(self.p.get("cart_view", self.lang), intent=["cart"], fact=titles,
                           fact_from=f"catalog:{it.mal_id}:title"),
                 self.turn(self.p.get("cart_checkout", self.lang), intent=["cart"], interrupt="checkout",
                           fact=[yen_fact(2 * price)], fact_from=f"catalog:{it.mal_id}:price")]
        if i % 3 != 2:
            turns.append(self.turn(self.p.get("yes", self.lang), followup=True, intent=["cart"], interrupt=False,
                                   fact=[r"MA-\d{8}"], fact_from="checkout:order_id"))
            turns.append(self.turn(self.p.get("cart_arrival", self.lang), followup=True, direct=True, intent=["order"],
                                   fact=[r"\d{4}-\d{2}-\d{2}", r"\d{1,2}月\d{1,2}日"], fact_from="order:placed:arrival"))
        else:
            turns.append(self.turn(self.p.get("cart_no", self.lang), followup=True, intent=["cart"], interrupt=False,
                                   fact=[r"nothing was ordered", "注文はしていません"], fact_from="checkout:declined"))
        self.conv("cart", turns, user)

    def build(self, scale: int = 1) -> list[dict]:
        for _ in range(10 * scale):
            self.title_followups()
        for _ in range(4 * scale):
            self.direct_entity()
        for j in range(4 * scale):
            self.author_list(ordinal=j % 2 == 0)
        for j in range(5 * scale):
            self.seeded_rec(ordinal=j % 2 == 0)
        for j in range(5 * scale):
            self.order_flow(j)
        for j in range(3 * scale):
            self.cancel_flow(j)
        for j in range(2 * scale):
            self.return_or_refuse(j)
        for j in range(4 * scale):
            self.policy(j)
        for j in range(3 * scale):
            self.out_of_scope(j)
        for j in range(3 * scale):
            self.topic_switch(j)
        for j in range(2 * scale):
            self.orders_then_search(j)
        for j in range(3 * scale):  # last, so that adding them left every earlier conversation as it was
            self.cart_flow(j)
        return self.convs


# ------------------------------------------------------------------------------------------- template check
def _phrasing(text: str) -> str:
    """A phrasing with every slot written the same way ("{t}", "{title}" → "{x}"), normalised."""
    return norm(re.sub(r"\{[a-z_]+\}", "{x}", text)).strip()


def _pool_phrasings(pools: object) -> list[str]:
    if isinstance(pools, str):
        return [pools]
    if isinstance(pools, dict):
        return [p for v in pools.values() for p in _pool_phrasings(v)]
    if isinstance(pools, (list, tuple)):
        return [p for v in pools for p in _pool_phrasings(v)]
    return []


def template_overlaps(texts: list[str]) -> list[tuple[str, str]]:
    """(phrasing or turn text, template or utterance) pairs where a phrasing of ``P`` is a router training
    template's phrasing (slots compared as slots, normalised), or a written turn is a router template or real
    utterance verbatim (normalised). Empty when the phrasings are fresh."""
    from tools.backends.router_data import load_real, load_templates

    templates = {_phrasing(t.template): t.template for t in load_templates()}
    real = {norm(u.text).strip(): u.text for u in load_real()}
    out = [(p, templates[_phrasing(p)]) for p in _pool_phrasings(P) if _phrasing(p) in templates]
    for text in texts:
        n = norm(text).strip()
        if n in real or n in templates:
            out.append((text, real.get(n) or templates[n]))
    return out


def main() -> None:
    from tools.backends.catalog import load_catalog
    from tools.backends.seed import build_seed

    catalog = load_catalog()
    seed_data = build_seed(catalog=catalog)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    all_texts = []
    for split in ("dev", "test"):
        convs = []
        for lang in ("en", "ja"):
            convs += Builder(catalog, seed_data, split, lang).build()
        with (DATA_DIR / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for c in convs:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        n_turns = sum(len(c["turns"]) for c in convs)
        print(f"{split}: {len(convs)} conversations, {n_turns} turns")
        all_texts += [t["text"] for c in convs for t in c["turns"]]
    overlaps = template_overlaps(sorted(set(all_texts)))
    for text, tmpl in overlaps:
        print(f"OVERLAP: {text!r} ~ {tmpl!r}")
    if overlaps:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
