"""Pipecat 1.14's service tracing decorators, for services written against Pipecat's bases.

A custom service decorates its methods as it would for Pipecat::

    from callpipe.utils.tracing.service_decorators import traced_stt, traced_tts

    class MyTTSService(TTSService):
        @traced_tts
        async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
            ...

    class MySTTService(STTService):
        @traced_stt(name="my-stt")
        async def _handle_transcription(self, transcript, is_final, language=None): ...

Every decorator here returns the decorated function itself, unchanged: a coroutine function
stays one, an async generator function stays one (the TTS base tells Pipecat's ``run_tts``
from callpipe's by what calling it returns), a plain function stays plain. ``traced_tts``,
``traced_stt`` and ``traced_llm`` work bare or with ``name=``; ``traced_gemini_live(operation)``
and ``traced_openai_realtime(operation)`` take their operation name, as in Pipecat.

Why they open no spans: callpipe traces a call from its record once the call has ended
(:mod:`callpipe.utils.tracing.record_trace`, ``PipelineWorker(enable_tracing=True)``). That
record already holds each service request, a custom service's as callpipe's own (its base
class measures the time to first byte), and is exported as ``stt``/``llm``/``tts`` spans under
each turn with Pipecat's names (``docs/pipecat-1.14-engine.md``, Tracing). Spans opened
here, while the call runs, would duplicate those, arrive outside their turn, and put tracing
work on the audio path of every call. So the decorators only keep a Pipecat service's source
valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "traced_gemini_live",
    "traced_llm",
    "traced_openai_realtime",
    "traced_stt",
    "traced_tts",
]


def _passthrough(func: F) -> F:
    return func


@overload
def traced_tts(func: F, *, name: str | None = None) -> F: ...


@overload
def traced_tts(func: None = None, *, name: str | None = None) -> Callable[[F], F]: ...


def traced_tts(func: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Pipecat's service tracing decorator (``traced_tts``, ``traced_stt``, ``traced_llm``):
    ``func`` unchanged, bare or called with ``name=`` (see the module docstring)."""
    return _passthrough if func is None else func


traced_stt = traced_tts
traced_llm = traced_tts


def traced_gemini_live(operation: str) -> Callable[[F], F]:
    """Pipecat's realtime tracing decorator for ``operation`` (``traced_gemini_live``,
    ``traced_openai_realtime``): the method unchanged."""
    return _passthrough


traced_openai_realtime = traced_gemini_live
