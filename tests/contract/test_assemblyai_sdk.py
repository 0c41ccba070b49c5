"""The official ``assemblyai`` SDK (streaming v3) against FakeAssemblyAIServer, and our service's
requests against the SDK's models.

Every message the fake sends must validate (strictly: no field the SDK does not model) as one of
the SDK's server event models; the SDK's own asyncio client must connect, stream, force an
endpoint and terminate through the fake; our service's socket query must be the one the SDK's
URI builder makes for the same options, with only parameters the SDK knows, and its control
messages must validate as the SDK's client message models.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assemblyai.streaming.v3 import (
    AsyncRealTimeTranscriber,
    BeginEvent,
    RealTimeError,
    RealTimeEvents,
    RealTimeParameters,
    RealTimeTranscriberOptions,
    SpeechStartedEvent,
    TerminationEvent,
    TurnEvent,
)
from assemblyai.streaming.v3._base import _build_uri
from assemblyai.streaming.v3.models import (
    ErrorEvent,
    ForceEndpoint,
    TerminateSession,
    UpdateConfiguration,
)

from callpipe.frames.frames import (
    InputAudioRawFrame,
    STTUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.assemblyai.stt import AssemblyAISTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.assemblyai import FakeAssemblyAIServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RESPONSES: dict[str, Any] = {
    "Begin": BeginEvent,
    "Turn": TurnEvent,
    "SpeechStarted": SpeechStartedEvent,
    "Termination": TerminationEvent,
    "Error": ErrorEvent,
}
REQUESTS: dict[str, Any] = {
    "ForceEndpoint": ForceEndpoint,
    "Terminate": TerminateSession,
    "UpdateConfiguration": UpdateConfiguration,
}
RATE = 16000


def validate(message: dict[str, Any], models: dict[str, Any]) -> Any:
    model = models[message["type"]]
    parsed = model.model_validate(message)
    assert set(message) <= set(model.model_fields), (message["type"], set(message))
    return parsed


def chunks(pcm: bytes, secs: float = 0.1) -> list[bytes]:
    step = int(RATE * secs) * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


async def test_sdk_streams_through_the_fake_and_accepts_every_message() -> None:
    async with FakeAssemblyAIServer() as fake:
        fake.transcripts.extend(["Hello from the SDK.", "Second turn, please."])
        options = RealTimeTranscriberOptions(api_key="test-key", api_host=fake.url)
        client = AsyncRealTimeTranscriber(options)
        events: list[Any] = []
        errors: list[RealTimeError] = []
        for event in (RealTimeEvents.Begin, RealTimeEvents.Turn, RealTimeEvents.Termination):
            client.on(event, lambda _client, message: events.append(message))
        client.on(RealTimeEvents.Error, lambda _client, error: errors.append(error))
        await client.connect(
            RealTimeParameters(
                sample_rate=RATE,
                encoding="pcm_s16le",
                speech_model="universal-streaming-english",
                format_turns=True,
                keyterms_prompt=["Acme"],
            )
        )
        loud = tone_pcm(0.8, RATE)
        quiet = bytes(int(RATE * 1.5) * 2)
        await client.stream(chunks(loud))
        await client.force_endpoint()  # ends the first turn at once
        await client.stream(chunks(loud + quiet))  # the second ends on silence
        for _ in range(200):
            if len(fake.turns(final=True)) == 4:
                break
            await asyncio.sleep(0.01)
        await client.disconnect(terminate=True)

        assert not errors
        assert isinstance(events[0], BeginEvent) and isinstance(events[-1], TerminationEvent)
        finals = [e for e in events if isinstance(e, TurnEvent) and e.turn_is_formatted]
        assert [e.transcript for e in finals] == ["Hello from the SDK.", "Second turn, please."]
        assert [m["type"] for m in fake.received] == ["ForceEndpoint", "Terminate"]
        assert json.loads(fake.queries[0]["keyterms_prompt"]) == ["Acme"]
        for message in fake.sent:
            validate(message, RESPONSES)


async def test_u3_speech_started_and_error_messages_validate() -> None:
    async with FakeAssemblyAIServer() as fake:
        options = RealTimeTranscriberOptions(api_key="wrong", api_host=fake.url)
        client = AsyncRealTimeTranscriber(options)
        errors: list[RealTimeError] = []
        client.on(RealTimeEvents.Error, lambda _client, error: errors.append(error))
        await client.connect(RealTimeParameters(sample_rate=RATE, speech_model="u3-rt-pro"))
        for _ in range(200):
            if errors:
                break
            await asyncio.sleep(0.01)
        await client.disconnect()
        assert errors and errors[0].code == 1008

        stt = AssemblyAISTTService(api_key="test-key", api_endpoint_base_url=fake.url)
        frames = [
            SleepFrame(5.0, until=lambda: fake.connections == 2),
            SleepFrame(0.1),
            *[InputAudioRawFrame(c, RATE) for c in chunks(tone_pcm(0.4, RATE), 0.02)],
        ]
        await run_test(stt, frames, params=PipelineParams(audio_in_sample_rate=RATE))
        kinds = {m["type"] for m in fake.sent}
        assert {"Error", "SpeechStarted", "Turn", "Termination"} <= kinds
        for message in fake.sent:
            validate(message, RESPONSES)


def _decoded(query: dict[str, list[str]]) -> dict[str, Any]:
    """A query as values (JSON arrays decoded, booleans compared without case)."""
    out: dict[str, Any] = {}
    for key, values in query.items():
        value = values[-1]
        if value.startswith("["):
            out[key] = json.loads(value)
        elif value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out


async def test_our_query_and_control_messages_are_the_sdks() -> None:
    settings = AssemblyAISTTService.Settings(
        keyterms_prompt=["Acme", "refund"],
        language_codes=[Language.ES, Language.EN_US],
        agent_context="How can I help?",
        speaker_labels=True,
        language_detection=True,
        vad_threshold=0.4,
        voice_focus="near-field",
        mode="balanced",
        interruption_delay=200,
    )
    async with FakeAssemblyAIServer() as fake:
        stt = AssemblyAISTTService(
            api_key="test-key", api_endpoint_base_url=fake.url, settings=settings
        )
        frames = [
            SleepFrame(5.0, until=lambda: fake.connections == 1),
            UserStartedSpeakingFrame(),
            *[InputAudioRawFrame(c, RATE) for c in chunks(tone_pcm(0.3, RATE), 0.02)],
            UserStoppedSpeakingFrame(),
            STTUpdateSettingsFrame(
                delta=AssemblyAISTTService.Settings(agent_context="Anything else?")
            ),
            SleepFrame(5.0, until=lambda: len(fake.received) == 2),
        ]
        await run_test(stt, frames, params=PipelineParams(audio_in_sample_rate=RATE))
        path = fake._server.paths[0]

    assert [m["type"] for m in fake.received] == [
        "ForceEndpoint",
        "UpdateConfiguration",
        "Terminate",
    ]
    for message in fake.received:
        validate(message, REQUESTS)

    ours = _decoded(parse_qs(urlsplit(path).query))
    known = set(RealTimeParameters.model_fields)
    assert set(ours) <= known, set(ours) - known
    params = RealTimeParameters.model_validate(ours)
    sdk = _decoded(parse_qs(urlsplit(_build_uri(fake.url, params)).query))
    assert urlsplit(path).path == urlsplit(_build_uri(fake.url, params)).path == "/v3/ws"
    assert ours == sdk
    assert ours["language_codes"] == ["es", "en"] and ours["speech_model"] == "universal-3-6-pro"
