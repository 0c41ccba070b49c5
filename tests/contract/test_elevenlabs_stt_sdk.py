"""The official ``elevenlabs`` SDK's realtime STT client against FakeElevenLabsSTTServer, and
our service's socket and messages against the SDK's.

The SDK's ``ScribeRealtime`` client connects to the fake, streams audio and commits; every
message the fake sends must validate strictly as the SDK model of its ``message_type`` (a
member of the SDK's ``ReceiveTranscription`` union). Our service must open its socket with the
query the SDK builds for the same options, and send only ``input_audio_chunk`` messages the
SDK's ``InputAudioChunkPayload`` describes (no field outside it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from typing import Any

from elevenlabs.realtime import AudioFormat, CommitStrategy, RealtimeEvents, ScribeRealtime
from elevenlabs.types import InputAudioChunkPayload
from elevenlabs.v_1_speech_to_text_realtime.types.receive_transcription import (
    ReceiveTranscription,
)
from pydantic import TypeAdapter

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.elevenlabs.stt import ElevenLabsRealtimeSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsSTTServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RATE = 8000
SERVER_MODELS: dict[str, Any] = {
    model.model_fields["message_type"].default: model
    for model in typing.get_args(ReceiveTranscription)
}


def validate_sent(messages: list[dict[str, Any]]) -> list[str]:
    """Each message validated strictly as the SDK model of its type; the types, in order."""
    kinds = []
    for message in messages:
        model = SERVER_MODELS[message["message_type"]]
        TypeAdapter(model).validate_json(json.dumps(message), strict=True)
        kinds.append(message["message_type"])
    return kinds


async def test_sdk_transcribes_through_the_fake_and_validates_every_message() -> None:
    async with FakeElevenLabsSTTServer() as fake:
        fake.transcripts.append("book a table")
        done = asyncio.Event()
        connection = await ScribeRealtime(api_key="test-key", base_url=fake.url).connect(
            {
                "model_id": "scribe_v2_realtime",
                "audio_format": AudioFormat.ULAW_8000,
                "sample_rate": RATE,
                "commit_strategy": CommitStrategy.MANUAL,
                "include_timestamps": True,
                "language_code": "en",
            }
        )
        connection.on(RealtimeEvents.COMMITTED_TRANSCRIPT_WITH_TIMESTAMPS, lambda _: done.set())
        speech = pcm_to_ulaw(tone_pcm(0.6, RATE))
        for i in range(0, len(speech), 800):
            await connection.send({"audio_base_64": base64.b64encode(speech[i : i + 800]).decode()})
        await connection.commit()
        await asyncio.wait_for(done.wait(), 3.0)
        await connection.close()
    kinds = validate_sent(fake.sent)
    assert kinds[0] == "session_started" and "partial_transcript" in kinds
    assert kinds[-2:] == ["committed_transcript", "committed_transcript_with_timestamps"]
    assert fake.sent[-1]["text"] == "book a table"
    assert fake.audio_at_commit == [len(speech)]


async def test_error_messages_validate_as_the_sdk_models() -> None:
    async with FakeElevenLabsSTTServer() as fake:
        fake.error_next = "bad chunk"
        errors: list[Any] = []
        got = asyncio.Event()
        connection = await ScribeRealtime(api_key="test-key", base_url=fake.url).connect(
            {
                "model_id": "scribe_v2_realtime",
                "audio_format": AudioFormat.PCM_16000,
                "sample_rate": 16000,
            }
        )
        connection.on(RealtimeEvents.ERROR, lambda data: (errors.append(data), got.set()))
        await connection.send({"audio_base_64": base64.b64encode(b"\0\0").decode()})
        await asyncio.wait_for(got.wait(), 3.0)
        await connection.close()
    assert validate_sent(fake.sent) == ["session_started", "input_error"]
    assert errors[0]["error"] == "bad chunk"


async def test_our_socket_and_messages_are_the_sdks() -> None:
    keyterms = ["callpipe", "New York"]
    async with FakeElevenLabsSTTServer() as fake:
        sdk = await ScribeRealtime(api_key="test-key", base_url=fake.url).connect(
            {
                "model_id": "scribe_v2_realtime",
                "audio_format": AudioFormat.ULAW_8000,
                "sample_rate": RATE,
                "commit_strategy": CommitStrategy.MANUAL,
                "language_code": "de",
                "keyterms": keyterms,
                "no_verbatim": True,
            }
        )
        await sdk.close()
        settings = ElevenLabsRealtimeSTTService.Settings(
            language="de-DE", keyterms=keyterms, no_verbatim=True
        )
        stt = ElevenLabsRealtimeSTTService(api_key="test-key", base_url=fake.url, settings=settings)
        params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        frames = [
            SleepFrame(0.1),
            InputAudioRawFrame(tone_pcm(0.3, RATE), RATE),
            UserStoppedSpeakingFrame(),
            SleepFrame(2.0, until=lambda: fake.commits == 1),
        ]
        down, up = await run_test(stt, frames, params=params)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    sdk_query, ours = fake.queries
    assert ours == sdk_query
    fields = set(InputAudioChunkPayload.model_fields)
    for message in fake.received:
        assert set(message) <= fields
        InputAudioChunkPayload.model_validate(message)


async def test_http_transcription_sdk_and_ours_agree_with_the_fake() -> None:
    """The SDK's ``speech_to_text.convert`` gets an answer that validates strictly as its
    ``SpeechToTextChunkResponseModel``, and our service's form is the SDK's for the same
    options."""
    from elevenlabs import AsyncElevenLabs
    from elevenlabs.types import SpeechToTextChunkResponseModel

    from callpipe.audio.wav import pcm_to_wav
    from callpipe.services.elevenlabs.stt import ElevenLabsSTTService
    from callpipe.testing.fakes.elevenlabs import FakeElevenLabsHTTPServer

    keyterms = ["callpipe", "New York"]
    async with FakeElevenLabsHTTPServer() as fake:
        fake.transcripts.extend(["from the sdk", "from us"])
        sdk = AsyncElevenLabs(api_key="test-key", base_url=fake.base_url)
        answer = await sdk.speech_to_text.convert(
            model_id="scribe_v2",
            file=("audio.wav", pcm_to_wav(tone_pcm(0.3, RATE), RATE), "audio/wav"),
            language_code="de",
            keyterms=keyterms,
            no_verbatim=True,
            tag_audio_events=False,
        )
        settings = ElevenLabsSTTService.Settings(
            language="de", keyterms=keyterms, no_verbatim=True, tag_audio_events=False
        )
        ours = ElevenLabsSTTService(api_key="test-key", base_url=fake.base_url, settings=settings)
        await ours.run_stt(pcm_to_wav(tone_pcm(0.3, RATE), RATE))
        await ours.disconnect()
    assert answer.text == "from the sdk"
    for sent in fake.answers:
        TypeAdapter(SpeechToTextChunkResponseModel).validate_json(json.dumps(sent), strict=True)
    sdk_form, our_form = ({k: v for k, v in r.items() if k != "file"} for r in fake.requests)
    # The SDK posts its unset JSON-typed fields as the string "null": the API's "not given".
    assert our_form == {k: v for k, v in sdk_form.items() if v != ["null"]}
