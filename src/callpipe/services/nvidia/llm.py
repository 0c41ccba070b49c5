"""NvidiaLLMService: NVIDIA NIM, hosted or self-hosted, over its OpenAI-compatible API.

Endpoint ``https://integrate.api.nvidia.com/v1/chat/completions`` (the hosted catalogue; point
``base_url`` at a local NIM container instead), bearer key from ``api_key=`` or
``NVIDIA_API_KEY``. A local NIM needs no key; the hosted one does, and a warning says so.

Reasoning models on NIM stream their thinking one of two ways: in a ``reasoning_content``
field (handled by the OpenAI service) or inline, as answer text opening with ``<think>`` and
closed by ``</think>``. The inline form is split here: the text between the tags becomes LLM
thought frames and only what follows is spoken. Answers that do not open with the tag pass
straight through once their first characters rule it out.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.llm_service import ToolCall
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

logger = logging.getLogger(__name__)

NVIDIA_BASE_URL = "https://integrate.api.nvidia.com/v1"
NVIDIA_DEFAULT_MODEL = "nvidia/nemotron-3.5-super-vl-120b-a12b"

_OPEN = "<think>"
_CLOSE = "</think>"

_ThinkState = Literal["detect", "thought", "after", "answer"]


@dataclass
class NvidiaLLMSettings(OpenAILLMSettings):
    """``NvidiaLLMService.Settings``: the OpenAI settings, nothing added."""


class NvidiaLLMService(OpenAILLMService):
    """NVIDIA NIM chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``nvidia/nemotron-3.5-super-vl-120b-a12b``.
    """

    Settings = NvidiaLLMSettings
    _settings: NvidiaLLMSettings
    _api_key_env = "NVIDIA_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = NVIDIA_BASE_URL,
        model: str | None = None,
        settings: NvidiaLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, NVIDIA_BASE_URL)
        key = api_key or os.environ.get("NVIDIA_API_KEY") or None
        if key is None and "api.nvidia.com" in base_url:
            logger.warning(
                "NvidiaLLMService: no API key for the hosted endpoint %s (set NVIDIA_API_KEY, "
                "or point base_url at a local NIM)",
                base_url,
            )
        defaults = NvidiaLLMSettings(model=model or NVIDIA_DEFAULT_MODEL)
        super().__init__(
            api_key=key, base_url=base_url, settings=store_from(defaults, settings), **kwargs
        )
        self._think: _ThinkState = "answer"
        self._think_buffer = ""

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        self._think = "detect"
        self._think_buffer = ""
        try:
            calls = await super()._stream_once(body, produced)
            await self._flush_think()
        finally:
            self._think = "answer"
            self._think_buffer = ""
        return calls

    async def end_thought(self, signature: Any = None) -> None:
        # The OpenAI service closes a thought when answer text arrives; text inside an inline
        # <think> block is answer text to it, so the block's thought stays open until </think>.
        if self._think != "thought":
            await super().end_thought(signature)

    async def push_llm_text(self, text: str) -> None:
        if self._think == "answer":
            await super().push_llm_text(text)
            return
        if self._think == "after":  # the space between </think> and the answer is not spoken
            await self._to_answer(text.lstrip())
            return
        self._think_buffer += text
        if self._think == "detect":
            head = self._think_buffer.lstrip()
            if head.startswith(_OPEN):
                self._think = "thought"
                self._think_buffer = head[len(_OPEN) :]
                await self.push_thought("")
            elif _OPEN.startswith(head):
                return  # too short to tell yet
            else:
                await self._to_answer(self._think_buffer)
                return
        end = self._think_buffer.find(_CLOSE)
        if end >= 0:
            thought, rest = self._think_buffer[:end], self._think_buffer[end + len(_CLOSE) :]
            if thought:
                await self.push_thought(thought)
            self._think = "answer"
            await super().end_thought()
            self._think = "after"
            await self._to_answer(rest.lstrip())
            return
        # Keep a tail that could be the start of "</think>"; the rest is thought.
        keep = len(_CLOSE) - 1
        if len(self._think_buffer) > keep:
            await self.push_thought(self._think_buffer[:-keep])
            self._think_buffer = self._think_buffer[-keep:]

    async def _to_answer(self, text: str) -> None:
        """Speak ``text``; after a thought, only from its first non-blank piece on."""
        self._think_buffer = ""
        if text or self._think != "after":
            self._think = "answer"
        if text:
            await super().push_llm_text(text)

    async def _flush_think(self) -> None:
        """End of a response: text held back while detecting is spoken; an unclosed inline
        thought is pushed and closed."""
        if self._think == "detect":
            await self._to_answer(self._think_buffer)
        elif self._think == "thought":
            if self._think_buffer:
                await self.push_thought(self._think_buffer)
            self._think = "answer"
            await super().end_thought()
