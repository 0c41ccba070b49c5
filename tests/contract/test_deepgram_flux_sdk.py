"""The official ``deepgram-sdk`` (``listen.v2``, Flux) against FakeDeepgramFluxServer, and our
service's requests against the SDK's models.

Every message the fake sends must validate (strictly, not the SDK's lenient ``construct``) as one
of the SDK's ``/v2/listen`` response models; the SDK's own client must connect, configure, stream
and receive through the fake; our service's query must be the one the SDK builds for the same
options, and its control messages must validate as the SDK's request models.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v2.types import (
    ListenV2CloseStream,
    ListenV2Configure,
    ListenV2ConfigureFailure,
    ListenV2ConfigureSuccess,
    ListenV2Connected,
    ListenV2FatalError,
    ListenV2ForceEndTurn,
    ListenV2TurnInfo,
)

from callpipe.frames.frames import InputAudioRawFrame, STTUpdateSettingsFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.flux.stt import DeepgramFluxSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram_flux import FakeDeepgramFluxServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

RESPONSES: dict[str, Any] = {
    "Connected": ListenV2Connected,
    "TurnInfo": ListenV2TurnInfo,
    "ConfigureSuccess": ListenV2ConfigureSuccess,
    "ConfigureFailure": ListenV2ConfigureFailure,
    "Error": ListenV2FatalError,
}
REQUESTS: dict[str, Any] = {
    "Configure": ListenV2Configure,
    "CloseStream": ListenV2CloseStream,
    "ForceEndTurn": ListenV2ForceEndTurn,
}
RATE = 16000


def validate(message: dict[str, Any], models: dict[str, Any]) -> Any:
    model = models[message["type"]]
    parsed = model.model_validate(message)
    # Nothing the SDK does not model: every field the fake sent is one of the model's.
    assert set(message) <= set(model.model_fields), (message["type"], set(message))
    return parsed


def environment(fake: FakeDeepgramFluxServer) -> DeepgramClientEnvironment:
    http = fake.url.replace("ws://", "http://")
    return DeepgramClientEnvironment(
        base=http, production=fake.url, agent=fake.url, agent_rest=http
    )


async def test_sdk_streams_through_the_fake_and_accepts_every_message() -> None:
    async with FakeDeepgramFluxServer() as fake:
        fake.transcripts.extend(["Hello from the SDK.", "Second turn."])
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        received: list[Any] = []
        async with client.listen.v2.connect(
            model="flux-general-en",
            encoding="linear16",
            sample_rate="16000",
            eager_eot_threshold="0.4",
            keyterm=["Acme Corp", "refund"],
        ) as socket:
            await socket.send_configure(
                ListenV2Configure(thresholds={"eot_threshold": 0.8}, keyterms=["Acme"])
            )
            await socket.send_configure({"type": "Configure", "language_hints": ["es"]})

            def quiet(secs: float) -> bytes:
                return bytes(int(secs * RATE) * 2)

            # A turn with a pause Flux takes for its end (then resumed), a second turn that
            # the client ends itself.
            pcm = tone_pcm(0.8, RATE) + quiet(0.16) + tone_pcm(0.5, RATE) + quiet(0.6)
            pcm += tone_pcm(0.5, RATE)
            for i in range(0, len(pcm), 2560):  # 80 ms chunks, as Deepgram recommends
                await socket.send_media(pcm[i : i + 2560])
            await socket.send_force_end_turn()
            await socket.send_close_stream()
            while True:
                try:
                    message = await socket.recv()
                except Exception:
                    break
                received.append(message)
    kinds = {type(m).__name__ for m in received}
    assert {"ListenV2Connected", "ListenV2TurnInfo", "ListenV2ConfigureSuccess"} <= kinds
    assert "ListenV2ConfigureFailure" in kinds  # language hints on flux-general-en
    assert not [m for m in received if isinstance(m, dict)]  # nothing the SDK did not know
    events = fake.events()
    for event in ("StartOfTurn", "Update", "EagerEndOfTurn", "TurnResumed", "EndOfTurn"):
        assert event in events
    assert [m["trigger"] for m in fake.sent if m.get("event") == "EndOfTurn"] == [
        "model",
        "manual",
    ]
    assert fake.query_lists[0]["keyterm"] == ["Acme Corp", "refund"]
    assert [m["sequence_id"] for m in fake.sent] == list(range(len(fake.sent)))
    for message in fake.sent:
        validate(message, RESPONSES)
    for message in fake.received:
        validate(message, REQUESTS)


async def test_sdk_sees_an_unparsable_message_answered_with_error() -> None:
    async with FakeDeepgramFluxServer() as fake:
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        async with client.listen.v2.connect(model="flux-general-en") as socket:
            await socket.send_configure({"type": "Nonsense"})
            received = []
            while True:
                try:
                    received.append(await socket.recv())
                except Exception:
                    break
    assert isinstance(received[-1], ListenV2FatalError)
    assert received[-1].code == "UNPARSABLE_CLIENT_MESSAGE"
    validate(fake.sent[-1], RESPONSES)


async def test_sdk_sees_the_fake_refuse_a_bad_key() -> None:
    from deepgram.core.api_error import ApiError

    async with FakeDeepgramFluxServer() as fake:
        client = AsyncDeepgramClient(api_key="wrong", environment=environment(fake))
        with pytest.raises(ApiError) as caught:
            async with client.listen.v2.connect(model="flux-general-en"):
                pass
    assert caught.value.status_code == 401


async def test_our_query_and_control_messages_are_the_sdks() -> None:
    """Same options through our service and the SDK: the fake must see the same query; our
    ``Configure`` and ``CloseStream`` must validate as the SDK's request models."""
    settings = DeepgramFluxSTTService.Settings(
        eot_threshold=0.8,
        eot_timeout_ms=4000,
        keyterm=["Acme Corp", "refund"],
        numerals=True,
        redact="numbers",
    )
    async with FakeDeepgramFluxServer() as fake:
        stt = DeepgramFluxSTTService(
            api_key="test-key",
            url=fake.url,
            tag=["prod"],
            mip_opt_out=True,
            enable_eager_end_of_turn=True,
            settings=settings,
        )
        update = DeepgramFluxSTTService.Settings(
            eot_threshold=0.9, keyterm=["Acme"], numerals=False
        )
        pcm = tone_pcm(0.3, RATE)
        await run_test(
            stt,
            [
                InputAudioRawFrame(pcm, RATE),
                SleepFrame(5.0, until=lambda: fake.connections == 1),
                STTUpdateSettingsFrame(delta=update),
                SleepFrame(5.0, until=lambda: bool(fake.received)),
            ],
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        )
        client = AsyncDeepgramClient(api_key="test-key", environment=environment(fake))
        ours = fake.query_lists[0]
        sdk_args = {k: v if k in ("keyterm", "tag") else v[-1] for k, v in ours.items()}
        async with client.listen.v2.connect(**sdk_args):  # type: ignore[arg-type]
            pass
    theirs = parse_qs(urlsplit(fake.paths[-1]).query)
    assert ours == theirs
    assert ours["eager_eot_threshold"] == ["0.5"] and ours["redact"] == ["numbers"]
    configure, close = fake.received
    assert configure == {
        "type": "Configure",
        "thresholds": {"eot_threshold": 0.9},
        "keyterms": ["Acme"],
        "numerals": False,
    }
    for message in fake.received:
        validate(message, REQUESTS)
    assert close == {"type": "CloseStream"}
    for message in fake.sent:
        validate(message, RESPONSES)
