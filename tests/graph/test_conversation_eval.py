"""The conversation eval (bench/eval_conversations.py) on the real graph: its files are well formed, its checks
fail on a wrong answer, and a seeded sample of the dev split passes (the CI sample; the full run is
`mangaassist eval conversations`)."""

from __future__ import annotations

import json
import random

from bench.eval_conversations import CHECK_KINDS, load_split, print_report, run_conversation, summarize
from tools.backends.models.text_rules import referenced_index


def test_both_splits_are_well_formed_and_share_no_phrasing():
    dev, test = load_split("dev"), load_split("test")
    assert len(dev) + len(test) >= 150 and sum(len(c["turns"]) for c in dev + test) >= 400
    for conv in dev + test:
        assert conv["lang"] in ("en", "ja") and conv["turns"]
        for turn in conv["turns"]:
            assert set(turn["checks"]) <= set(CHECK_KINDS) and turn["checks"], (conv["id"], turn)
    shared_texts = {t["text"] for c in dev for t in c["turns"]} & {t["text"] for c in test for t in c["turns"]}
    assert all(referenced_index(t) is not None for t in shared_texts), shared_texts  # only bare ordinals recur
    assert {c["lang"] for c in dev} == {c["lang"] for c in test} == {"en", "ja"}


def test_the_hand_written_split_is_well_formed_and_new():
    test2 = load_split("test2")
    assert len(test2) >= 60 and {c["lang"] for c in test2} == {"en", "ja"}
    for conv in test2:
        for turn in conv["turns"]:
            assert set(turn["checks"]) <= set(CHECK_KINDS) and "intent" in turn["checks"], (conv["id"], turn)
    earlier = {t["text"] for split in ("dev", "test") for c in load_split(split) for t in c["turns"]}
    repeated = {t["text"] for c in test2 for t in c["turns"]} & earlier
    assert repeated <= {"はい、お願いします"}, repeated  # only a bare confirmation recurs


async def test_a_wrong_expectation_fails_its_check(shared, tmp_path):
    conv = {"id": "probe", "lang": "en", "user_id": "u_ben", "turns": [
        {"text": "do you have Vagabond?", "checks": {"intent": ["search"], "item": 656, "only": [656], "lang": "en"}},
        {"text": "who is the author?", "followup": True, "direct": True,
         "checks": {"intent": ["search"], "item": 656, "fact": ["Takehiko Inoue"], "lang": "en"}},
        {"text": "how many volumes?", "followup": True, "direct": True,
         "checks": {"intent": ["order"], "fact": ["Eiichiro Oda"], "lang": "ja", "never": ["Vagabond"]}},
    ]}
    records = await run_conversation(conv, shared, shared["settings"], tmp_path)
    assert [r["ok"] for r in records] == [True, True, False]
    failed = {k for k, v in records[2]["checks"].items() if not v["ok"]}
    assert failed == {"intent", "fact", "lang", "never"}
    summary = summarize(records, "probe", 1, show_failures=True)
    assert summary["all"] == {"n": 3, "passed": 2, "rate": 0.6667} and summary["followup"]["n"] == 2
    assert summary["by_kind"]["fact"] == {"n": 2, "passed": 1, "rate": 0.5}


async def test_a_sample_of_the_dev_split_passes(shared, tmp_path, capsys):
    convs = random.Random(0).sample(load_split("dev"), 12)
    records = []
    for n, conv in enumerate(convs):
        work = tmp_path / f"c{n}"
        work.mkdir()
        records += await run_conversation(conv, shared, shared["settings"], work)
    summary = summarize(records, "dev", len(convs), show_failures=True)
    print_report(summary)
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out.strip().splitlines()[-1])  # the figures, one JSON line, in the CI log
    assert json.loads(out.strip().splitlines()[-1])["n_turns"] == len(records)
    assert summary["all"]["rate"] >= 0.85, [(r["conv_id"], r["turn"], r["text"]) for r in summary["failures"]]


def test_the_cli_refuses_an_unknown_split_with_exit_code_2():
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["eval", "conversations", "--split", "train"])
    assert result.exit_code == 2 and "unknown split" in result.output
    assert CliRunner().invoke(app, ["eval", "conversations", "--sample", "0"]).exit_code == 2
