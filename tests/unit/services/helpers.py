"""Test helpers for services: LLM replies and text, TTS audio length, errors, pipeline
params for phone and wideband calls, interrupting at a known point instead of after a
guessed sleep, and the caller's audio and turn checks for STT services."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import FrameCollector, SleepFrame
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.base_object import BaseObject

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
"""A phone call: 8 kHz in and out."""
WIDE = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
"""A wideband call: 16 kHz in and out."""


async def run_then(
    processor: FrameProcessor,
    before: Sequence[Frame],
    after: Sequence[Frame],
    *,
    when: Callable[[list[Frame]], bool],
    params: PipelineParams | None = None,
) -> list[Frame]:
    """Send ``before``; once ``when(frames out so far)`` holds, send ``after`` and an EndFrame.

    Returns the frames that left ``processor`` downstream (StartFrame excluded).
    """
    down = FrameCollector(FrameDirection.DOWNSTREAM)
    task = PipelineTask(Pipeline([processor, down]), params=params, idle_timeout_secs=None)

    async def send(frames: Sequence[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, SleepFrame):
                await frame.wait()
            else:
                await task.queue_frame(frame)

    async def feed() -> None:
        await send(before)
        for _ in range(1000):
            if when(down.frames):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("condition never held")
        await send(after)
        await task.queue_frame(EndFrame())

    feeder = asyncio.get_running_loop().create_task(feed())
    await task.run()
    await feeder
    return down.frames


async def barge_in(
    tts: FrameProcessor,
    *,
    params: PipelineParams,
    words: int = 40,
    tail: str = "",
    pause: float = 0.0,
    next_reply: str = "Fresh start.",
) -> list[Frame]:
    """Interrupt a reply while its long first sentence (``words`` words, then ``tail`` if any)
    is being spoken, as soon as its first audio came out; after ``pause`` seconds
    ``next_reply`` follows. Returns the frames out of ``tts``."""
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame(" ".join(["word"] * words) + "."),
    ]
    if tail:
        before.append(LLMTextFrame(tail))
    after: list[Frame] = [InterruptionFrame()]
    if pause:
        after.append(SleepFrame(pause))
    after.extend(reply(next_reply))
    return await run_then(tts, before, after, when=emitted(TTSAudioRawFrame), params=params)


def after_barge_in(frames: Sequence[Frame]) -> list[Frame]:
    """The frames from the interruption on, checked to hold no audio of a context whose audio
    came out before it."""
    cut = interruption_at(frames)
    old = {f.context_id for f in frames[:cut] if isinstance(f, TTSAudioRawFrame)}
    rest = list(frames[cut:])
    assert not [f for f in rest if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    return rest


def openai_llm(server: FakeOpenAIServer, **kwargs: Any) -> OpenAILLMService:
    """An OpenAILLMService talking to ``server`` (model ``fake-model``)."""
    return OpenAILLMService(
        api_key="test-key", base_url=server.base_url, model="fake-model", **kwargs
    )


def emitted(cls: type[Frame]) -> Callable[[list[Frame]], bool]:
    """A ``run_then`` condition: a frame of type ``cls`` has come out."""
    return lambda out: any(isinstance(f, cls) for f in out)


def interruption_at(frames: Sequence[Frame]) -> int:
    """The index of the first InterruptionFrame among ``frames``."""
    return next(i for i, f in enumerate(frames) if isinstance(f, InterruptionFrame))


async def eventually(predicate: Callable[[], object]) -> None:
    """Wait (at most about 1 s) until ``predicate()`` is truthy; the caller asserts after."""
    for _ in range(50):
        if predicate():
            return
        await asyncio.sleep(0.02)


def reply(*chunks: str) -> list[Frame]:
    """An LLM response as the TTS services receive it: start, text chunks, end."""
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


def texts(frames: Sequence[object]) -> str:
    """The LLM's streamed text among ``frames``, joined."""
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


def errors(frames: Sequence[object]) -> list[ErrorFrame]:
    """The error frames among ``frames``."""
    return [f for f in frames if isinstance(f, ErrorFrame)]


def spoken(frames: Sequence[Frame]) -> list[str]:
    """The texts of the TTSTextFrames among ``frames`` (what a TTS service says was spoken)."""
    return [f.text for f in frames if isinstance(f, TTSTextFrame)]


def assert_words_follow_audio(
    frames: Sequence[Frame], secs_per_word: float, *, tolerance: float = 1e-6
) -> None:
    """Check that the n-th TTSTextFrame (one word each, ``secs_per_word`` of speech each) left
    only once n words of audio had gone out before it."""
    heard = 0.0
    n = 0
    for frame in frames:
        if isinstance(frame, TTSAudioRawFrame):
            heard += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TTSTextFrame):
            n += 1
            assert heard >= n * secs_per_word - tolerance, frame.text


def assert_reply_framed(frames: Sequence[Frame]) -> None:
    """Check that a spoken reply opens with TTSStartedFrame before its first audio and that
    TTSStoppedFrame comes before the reply's LLMFullResponseEndFrame."""
    kinds = [type(f) for f in frames]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


def assert_one_text_after_audio(frames: Sequence[Frame], text: str) -> None:
    """Check that a service without word timing sends the reply as one TTSTextFrame saying
    ``text``, and only after all of the reply's audio."""
    [frame] = [f for f in frames if isinstance(f, TTSTextFrame)]
    last_audio = max(i for i, f in enumerate(frames) if isinstance(f, TTSAudioRawFrame))
    assert list(frames).index(frame) > last_audio and frame.text == text


def service_account_info(token_uri: str, *, project: str = "callpipe-test") -> dict[str, str]:
    """A Google service-account key file's fields, with a fresh RSA key, for ``project`` and a
    token endpoint at ``token_uri`` (needs the optional ``cryptography`` package)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": f"tts@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def audio_secs(frames: Sequence[Frame]) -> float:
    """Seconds of TTS audio among ``frames``."""
    return sum(len(f.audio) / 2 / f.sample_rate for f in frames if isinstance(f, TTSAudioRawFrame))


def caller_audio(secs: float, *, loud: bool, rate: int = 8000) -> list[Frame]:
    """``secs`` of the caller's audio (a tone, or silence) in 20 ms packets, like a phone
    stream."""
    pcm = tone_pcm(secs, rate) if loud else bytes(int(secs * rate) * 2)
    step = rate // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], rate) for i in range(0, len(pcm), step)]


def finals(frames: Sequence[Frame]) -> list[TranscriptionFrame]:
    """The final transcripts among ``frames``."""
    return [f for f in frames if isinstance(f, TranscriptionFrame)]


def of(frames: Sequence[Frame], cls: type[Frame]) -> list[Any]:
    """The frames of type ``cls``."""
    return [f for f in frames if isinstance(f, cls)]


def until(predicate: Callable[[], bool]) -> SleepFrame:
    """Wait (at most 5 s) until ``predicate()`` holds."""
    return SleepFrame(5.0, until=predicate)


def assert_provider_turn(down: Sequence[Frame], up: Sequence[Frame]) -> STTMetadataFrame:
    """Check an STT service whose provider ends the turns, built with
    ``should_interrupt=False``: its metadata recommends the external strategies without
    interruptions, and one proposed turn went out around its transcript (stopped: both ways).
    Returns the metadata frame."""
    meta: STTMetadataFrame = of(down, STTMetadataFrame)[0]
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert meta.user_turn_strategies.enable_interruptions is False
    turn = ProposedUserStartedSpeakingFrame | TranscriptionFrame | ProposedUserStoppedSpeakingFrame
    assert [type(f) for f in down if isinstance(f, turn)] == [
        ProposedUserStartedSpeakingFrame,
        TranscriptionFrame,
        ProposedUserStoppedSpeakingFrame,
    ]
    assert len(of(up, ProposedUserStoppedSpeakingFrame)) == 1
    return meta


class ConnectionEvents:
    """The connection events (Pipecat 1.14's) a service fired, in order: ``(name, args after
    the service)``."""

    def __init__(self, service: BaseObject) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        self.snapshots: list[list[str]] = []
        for name in ("on_connected", "on_disconnected", "on_connection_error"):
            service.add_event_handler(name, self._handler(name))

    def _handler(self, name: str) -> Any:
        async def handler(source: BaseObject, *args: Any) -> None:
            self.seen.append((name, args))

        return handler

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def errors(self) -> list[str]:
        return [args[0] for name, args in self.seen if name == "on_connection_error"]

    def snapshot(self) -> SleepFrame:
        """A frame that notes the events seen when the pipeline reaches it (mid-call)."""
        return until(lambda: self.snapshots.append(self.names()) is None)
