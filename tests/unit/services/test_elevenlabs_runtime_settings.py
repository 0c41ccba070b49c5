"""ElevenLabsTTSService: runtime settings that live in the socket URL, and language codes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.server import ServerConnection

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import emitted, reply, run_then

Settings = ElevenLabsTTSService.Settings


class SocketTrackingFake(FakeElevenLabsServer):
    """The fake, also noting each connection's path and which connection each context used."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.socket_paths: list[str] = []
        self.sockets: list[ServerConnection] = []
        self.socket_of: dict[str, int] = {}
        """Context id -> index of the connection it was opened on."""

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.socket_paths.append(urlsplit(ws.request.path).path)
        self.sockets.append(ws)
        await super()._handle(ws)

    async def _generate(self, ws: ServerConnection, ctx: Any, rate: int, fmt: str) -> None:
        self.socket_of[ctx.id] = self.sockets.index(ws)
        await super()._generate(ws, ctx, rate, fmt)


@pytest.fixture
async def server() -> AsyncIterator[SocketTrackingFake]:
    async with SocketTrackingFake(secs_per_char=0.01, chunk_secs=0.05) as fake:
        yield fake


def make_tts(server: FakeElevenLabsServer, **kwargs: Any) -> ElevenLabsTTSService:
    return ElevenLabsTTSService(api_key="test-key", voice_id="voice-a", url=server.url, **kwargs)


def contexts_in_order(down: list[Frame]) -> list[str]:
    """Context ids of the replies, in the order their audio left the service."""
    ids: list[str] = []
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame) and frame.context_id not in ids:
            assert frame.context_id is not None
            ids.append(frame.context_id)
    return ids


def words(down: list[Frame]) -> list[str]:
    return [f.text for f in down if isinstance(f, TTSTextFrame)]


def update(**fields: Any) -> TTSUpdateSettingsFrame:
    return TTSUpdateSettingsFrame(delta=Settings(**fields))


async def test_voice_change_mid_call_reconnects_with_the_new_voice(
    server: SocketTrackingFake, caplog: pytest.LogCaptureFixture
) -> None:
    frames: list[Frame] = [
        *reply("First reply."),
        update(voice="voice-b"),
        *reply("Second reply."),
    ]
    with caplog.at_level(logging.DEBUG):
        down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    assert server.socket_paths == [
        "/v1/text-to-speech/voice-a/multi-stream-input",
        "/v1/text-to-speech/voice-b/multi-stream-input",
    ]
    first, second = contexts_in_order(down)
    assert server.socket_of == {first: 0, second: 1}
    assert words(down) == ["First", "reply.", "Second", "reply."]
    # The old socket was closed by us, cleanly: no error frame, no ERROR log.
    assert {"close_socket": True} in server.messages
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_language_change_mid_call_reconnects_with_the_new_code(
    server: SocketTrackingFake,
) -> None:
    params = ElevenLabsTTSService.InputParams(language="en")
    frames: list[Frame] = [
        *reply("Hello there."),
        update(language=Language.PT_BR),
        *reply("Olá."),
    ]
    down, up = await run_test(make_tts(server, params=params), frames, params=PARAMS)
    assert [q.get("language_code") for q in server.queries] == [["en"], ["pt"]]
    first, second = contexts_in_order(down)
    assert server.socket_of == {first: 0, second: 1}
    assert words(down)[-1] == "Olá."
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_change_during_a_reply_waits_for_its_end(server: SocketTrackingFake) -> None:
    """The reply being spoken keeps its voice to the end; the next one has the new voice."""
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("One sentence first. And"),  # the first sentence is complete: sent
        SleepFrame(5.0, until=lambda: bool(server.socket_of)),
        update(voice="voice-b"),
        LLMTextFrame(" a second one."),
        LLMFullResponseEndFrame(),
        *reply("Next reply."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    first, second = contexts_in_order(down)
    assert server.socket_of == {first: 0, second: 1}
    # The whole first reply came from the first socket, none of it cut.
    sent = [m["text"] for m in server.messages if m.get("context_id") == first and "text" in m]
    assert [t for t in sent if t.strip()] == ["One sentence first. ", "And a second one. "]
    spoken = "One sentence first. And a second one. "
    first_audio = [f for f in down if isinstance(f, TTSAudioRawFrame) and f.context_id == first]
    assert abs(sum(len(f.audio) / 2 / 8000 for f in first_audio) - len(spoken) * 0.01) < 1e-6
    assert " ".join(words(down)) == "One sentence first. And a second one. Next reply."
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_interruption_lets_a_waiting_change_happen_at_once(
    server: SocketTrackingFake,
) -> None:
    """A change waiting for a reply's end need not wait once the caller cut the reply off:
    the socket is replaced then, not when the next reply starts."""
    server.chunk_delay = 0.02
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("word " * 80 + "end. And"),
        update(voice="voice-b"),
    ]
    down = await run_then(
        make_tts(server),
        before,
        [InterruptionFrame(), SleepFrame(0.5)],  # and no new reply
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    assert server.connections == 2
    assert server.socket_paths[1] == "/v1/text-to-speech/voice-b/multi-stream-input"
    (old,) = contexts_in_order(down)
    assert server.socket_of == {old: 0} and server.closed_contexts == [old]


async def test_reply_behind_a_slow_one_goes_on_the_old_socket_after_a_while(
    server: SocketTrackingFake, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply does not wait past ``context_timeout_secs`` for an earlier one to finish
    generating: it is spoken on the old socket, and the change follows once both are done."""
    server.chunk_delay = 0.1  # 20 chunks: the first reply generates for about 2 s
    frames: list[Frame] = [
        *reply("word " * 19 + "end."),
        update(voice="voice-b"),
        *reply("Second."),
        SleepFrame(5.0, until=lambda: server.connections == 2),
        *reply("Third."),
    ]
    with caplog.at_level(logging.WARNING):
        down, up = await run_test(make_tts(server, context_timeout_secs=0.5), frames, params=PARAMS)
    one, two, three = contexts_in_order(down)
    assert server.socket_of == {one: 0, two: 0, three: 1}
    assert words(down)[-2:] == ["Second.", "Third."]
    assert any("still generating" in r.getMessage() for r in caplog.records)
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_voice_settings_change_keeps_the_socket(server: SocketTrackingFake) -> None:
    """Stability and the like go with the next context; only a URL change reconnects."""
    frames: list[Frame] = [
        *reply("One."),
        update(stability=0.7, speed=0.9),
        *reply("Two."),
        update(model="eleven_turbo_v2_5"),
        *reply("Three."),
    ]
    down, _ = await run_test(make_tts(server), frames, params=PARAMS)
    one, two, three = contexts_in_order(down)
    assert server.socket_of == {one: 0, two: 0, three: 1}
    inits = {m["context_id"]: m for m in server.messages if m.get("text") == " "}
    assert "voice_settings" not in inits[one]
    assert inits[two]["voice_settings"] == {"stability": 0.7, "speed": 0.9}
    assert [q["model_id"] for q in server.queries] == [["eleven_flash_v2_5"], ["eleven_turbo_v2_5"]]


async def test_failed_reconnect_keeps_the_old_socket(server: SocketTrackingFake) -> None:
    server._server.max_connections = 1  # the reconnect is refused (503, retried once)
    frames: list[Frame] = [
        *reply("One."),
        update(voice="voice-b"),
        SleepFrame(3.0, until=lambda: server.rejected == 2),
        *reply("Two."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "new settings" in errors[0].error
    assert not errors[0].fatal
    one, two = contexts_in_order(down)
    assert server.socket_of == {one: 0, two: 0}
    assert words(down) == ["One.", "Two."]


async def test_language_is_sent_as_elevenlabs_code(server: SocketTrackingFake) -> None:
    """ISO 639-1, not the BCP 47 tag; a same-code change does not reconnect."""
    params = ElevenLabsTTSService.InputParams(language=Language.PT_BR)
    frames: list[Frame] = [
        *reply("Um."),
        update(language="pt-PT"),  # "pt" again: same URL
        *reply("Dois."),
        update(language=Language.ES_MX),
        *reply("Tres."),
    ]
    down, _ = await run_test(make_tts(server, params=params), frames, params=PARAMS)
    assert [q["language_code"] for q in server.queries] == [["pt"], ["es"]]
    one, two, three = contexts_in_order(down)
    assert server.socket_of == {one: 0, two: 0, three: 1}


def test_language_codes_and_the_models_that_take_them(caplog: pytest.LogCaptureFixture) -> None:
    def code(language: str, model: str = "eleven_flash_v2_5") -> str | None:
        params = ElevenLabsTTSService.InputParams(language=language)
        tts = ElevenLabsTTSService(api_key="k", voice_id="v", model=model, params=params)
        value = tts._language_code()
        assert value is None or type(value) is str  # a plain str, not the enum member
        return value

    assert code(Language.PT_BR) == "pt" and code(Language.EN_US) == "en"
    assert code("zh-TW") == "zh" and code(Language.NB_NO) == "no" and code(Language.FIL) == "fil"
    assert code(Language.SW_KE) is None  # not one of v2.5's 32 languages...
    assert code(Language.SW_KE, "eleven_v3") == "sw"  # ...but one of v3's
    with caplog.at_level(logging.WARNING):
        assert code(Language.DE_DE, "eleven_multilingual_v2") is None  # takes no language_code
    assert any("takes no language_code" in r.getMessage() for r in caplog.records)
    tts = ElevenLabsTTSService(api_key="k", voice_id="v")
    assert tts.language_to_service_language(Language.FR_CA) == "fr"
