"""The official ``deepgram-sdk`` against FakeDeepgramServer, and our requests against its models.

Every message the fake sends must validate (strictly, not the SDK's lenient ``construct``) as
one of the SDK's live-transcription response models; the SDK's own client must connect, stream
and receive through the fake; our service's query must be one the SDK would build.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import (
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeDeepgramServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

MODELS: dict[str, Any] = {
    "Results": ListenV1Results,
    "Metadata": ListenV1Metadata,
    "SpeechStarted": ListenV1SpeechStarted,
    "UtteranceEnd": ListenV1UtteranceEnd,
}


def validate(message: dict[str, Any]) -> Any:
    return MODELS[message["type"]].model_validate(message)


def environment(fake: FakeDeepgramServer) -> DeepgramClientEnvironment:
    http = fake.url.replace("ws://", "http://")
    return DeepgramClientEnvironment(
        base=http, production=fake.url, agent=fake.url, agent_rest=http
    )


async def test_sdk_streams_through_the_fake_and_accepts_every_message() -> None:
    async with FakeDeepgramServer() as fake:
        fake.transcripts.append("Hello from the SDK.")
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        received: list[Any] = []
        async with client.listen.v1.connect(
            model="nova-3",
            encoding="linear16",
            sample_rate="8000",
            interim_results="true",
            vad_events="true",
            utterance_end_ms="1000",
            keyterm=["Acme Corp", "refund"],
        ) as socket:
            pcm = tone_pcm(0.6, 8000) + bytes(16000 * 2)
            for i in range(0, len(pcm), 320):
                await socket.send_media(pcm[i : i + 320])
            await socket.send_close_stream()
            while True:
                try:
                    message = await socket.recv()
                except Exception:
                    break
                received.append(message)
    kinds = [type(m).__name__ for m in received]
    assert "ListenV1Results" in kinds and "ListenV1Metadata" in kinds
    assert "ListenV1SpeechStarted" in kinds and "ListenV1UtteranceEnd" in kinds
    assert not [m for m in received if isinstance(m, dict)]  # nothing the SDK did not know
    assert fake.query_lists[0]["keyterm"] == ["Acme Corp", "refund"]
    for message in [*fake.results, *fake.events]:
        validate(message)


async def test_sdk_sees_the_fake_refuse_a_bad_key() -> None:
    from deepgram.core.api_error import ApiError

    async with FakeDeepgramServer() as fake:
        client = AsyncDeepgramClient(api_key="wrong", environment=environment(fake))
        with pytest.raises(ApiError) as caught:
            async with client.listen.v1.connect(model="nova-3"):
                pass
    assert caught.value.status_code == 401


async def test_our_query_is_the_one_the_sdk_builds() -> None:
    """Same options through our service and the SDK: the fake must see the same query."""
    options = LiveOptions(keyterm=["Acme Corp", "refund"], utterance_end_ms=1000, vad_events=True)
    async with FakeDeepgramServer() as fake:
        stt = DeepgramSTTService(api_key="test-key", url=fake.url, live_options=options)
        await run_test(
            stt,
            [SleepFrame(5.0, until=lambda: bool(fake.query_lists))],  # connected, however slow
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        ours = fake.query_lists[0]
        sdk_args = {k: v if k == "keyterm" else v[-1] for k, v in ours.items()}
        async with client.listen.v1.connect(**sdk_args):  # type: ignore[arg-type]
            pass
    theirs = parse_qs(urlsplit(fake.paths[-1]).query)
    assert ours == theirs


async def test_recorded_results_from_the_docs_replay_through_our_client() -> None:
    """Deepgram's documented messages: valid for the SDK, and turned into the right frames."""
    from pathlib import Path

    from callpipe.frames.frames import InterimTranscriptionFrame, TranscriptionFrame

    from .replay import ReplayServer

    fixture = Path(__file__).parent / "fixtures" / "deepgram_results.json"
    messages = json.loads(fixture.read_text())["messages"]
    for message in messages:
        validate(message)
    async with ReplayServer(on_connect=messages) as server:
        options = LiveOptions(vad_events=True, utterance_end_ms=1000)
        stt = DeepgramSTTService(api_key="k", url=server.url, live_options=options)
        events: list[str] = []

        @stt.event_handler("on_speech_started")
        async def started(service: Any, message: dict[str, Any]) -> None:
            events.append(message["type"])

        @stt.event_handler("on_utterance_end")
        async def ended(service: Any, message: dict[str, Any]) -> None:
            events.append(message["type"])

        down, _ = await run_test(
            stt,
            # The replay ends with UtteranceEnd: wait for it, however slow the host.
            [SleepFrame(5.0, until=lambda: "UtteranceEnd" in events)],
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )
    interim = [f for f in down if isinstance(f, InterimTranscriptionFrame)]
    final = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [f.text for f in interim] == ["I would like"]
    assert [f.text for f in final] == ["I would like a refund."]
    assert final[0].finalized
    words = final[0].result["channel"]["alternatives"][0]["words"]
    assert [w["punctuated_word"] for w in words][-1] == "refund."
    assert events == ["SpeechStarted", "UtteranceEnd"]
