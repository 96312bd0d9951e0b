"""The local profile's writer: a deterministic chat model that renders templates from a WriteTask.

It is a real ``BaseChatModel``: nodes call it exactly like a remote writer, and LangGraph's ``messages``
stream mode receives its tokens (word-sized chunks) when a client streams.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from core.ports import WriteTask
from tools.backends.models.templates import render

_TOKEN = re.compile(r"\S+\s*|\s+")


def task_from_messages(messages: list[BaseMessage]) -> WriteTask:
    """The WriteTask JSON carried by the last message (see tools/backends/models/prompts.writer_messages)."""
    return WriteTask.model_validate(json.loads(str(messages[-1].content)))


class LocalTemplateWriter(BaseChatModel):
    """Writer role of the ``local`` profile. Input: [system, human(WriteTask JSON)]; output: the answer text."""

    @property
    def _llm_type(self) -> str:
        return "mangaassist-local-writer"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = render(task_from_messages(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text = render(task_from_messages(messages))
        for tok in _TOKEN.findall(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tok))
            if run_manager:
                run_manager.on_llm_new_token(tok, chunk=chunk)
            yield chunk
