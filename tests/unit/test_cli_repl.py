"""The interactive chat ends on the words customers type to leave, instead of answering them as small talk."""

from __future__ import annotations

import pytest

from cli.chat_cmds import is_exit_command


@pytest.mark.parametrize("text", ["exit", "quit", "  Exit ", "QUIT", "exit()", ":q", "bye!", "終了", "終了。", "おわり", "やめる"])
def test_exit_words_end_the_repl(text):
    assert is_exit_command(text)


@pytest.mark.parametrize("text", ["", "hi", "how do I exit the newsletter?", "quit my subscription", "終了したシリーズ",
                                  "ベルセルクはありますか", "can I quit an order?"])
def test_messages_are_not_exit_words(text):
    assert not is_exit_command(text)
