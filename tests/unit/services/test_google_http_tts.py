"""GoogleHttpTTSService against FakeGoogleTTSServer: one ``text:synthesize`` per sentence."""

from __future__ import annotations

import json
import logging
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callpipe.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from callpipe.errors import ConfigurationError, MissingDependencyError, ProtocolError
from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.google.tts import (
    GoogleHttpTTSService,
    language_to_google_tts_language,
    wav_payload,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.google_tts import FakeGoogleTTSServer, wav_file
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE, WIDE, audio_secs, errors, reply, run_then, service_account_info

SSML_VOICE = "en-US-Neural2-F"


@pytest.fixture
async def server() -> AsyncIterator[FakeGoogleTTSServer]:
    async with FakeGoogleTTSServer(secs_per_word=0.1) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_google_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "CALLPIPE_GOOGLE_TTS_URL"):
        monkeypatch.delenv(name, raising=False)


def make_tts(server: FakeGoogleTTSServer, **kwargs: Any) -> GoogleHttpTTSService:
    kwargs.setdefault("api_key", "test-key")
    return GoogleHttpTTSService(base_url=server.base_url, **kwargs)


def played(down: list[Frame]) -> bytes:
    return b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))


async def test_phone_call_gets_mulaw_at_8khz_without_the_wav_header(
    server: FakeGoogleTTSServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert server.requests[0] == {
        "input": {"text": "Hi there."},  # the default Chirp 3 HD voice takes plain text
        "voice": {"languageCode": "en-US", "name": "en-US-Chirp3-HD-Charon"},
        "audioConfig": {"audioEncoding": "MULAW", "sampleRateHertz": 8000},
    }
    assert server.requests[1]["input"] == {"text": "How are you?"}
    assert server.headers[0]["x-goog-api-key"] == "test-key"
    assert server.queries[0] == {}  # the key is not put in the URL
    # Google's answer is a WAV file (58-byte G.711 header here): only its samples are played.
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {8000}
    expected = ulaw_to_pcm(pcm_to_ulaw(tone_pcm(0.2, 8000))) + ulaw_to_pcm(
        pcm_to_ulaw(tone_pcm(0.3, 8000))
    )
    assert played(down) == expected
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in texts] == ["Hi there.", "How are you?"]  # type: ignore[attr-defined]
    assert isinstance(down[texts[0] - 1], TTSAudioRawFrame)  # each text after its audio


async def test_wideband_gets_linear16_at_the_pipeline_rate(server: FakeGoogleTTSServer) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two three.")], params=WIDE)
    assert not errors(up)
    assert server.requests[0]["audioConfig"] == {
        "audioEncoding": "LINEAR16",
        "sampleRateHertz": 16000,
    }
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}
    assert played(down) == tone_pcm(0.3, 16000)  # the 44-byte header is not among the samples


async def test_an_explicit_encoding_is_kept(server: FakeGoogleTTSServer) -> None:
    down, _ = await run_test(
        make_tts(server, encoding="LINEAR16"), [TTSSpeakFrame("One two.")], params=PHONE
    )
    assert server.requests[0]["audioConfig"]["audioEncoding"] == "LINEAR16"
    assert played(down) == tone_pcm(0.2, 8000)
    with pytest.raises(ConfigurationError):
        make_tts(server, encoding="MP3")


async def test_other_voices_get_ssml_from_the_settings(server: FakeGoogleTTSServer) -> None:
    settings = GoogleHttpTTSService.Settings(
        voice=SSML_VOICE,
        pitch="+2st",
        rate="110%",
        volume="loud",
        emphasis="moderate",
        gender="female",
        google_style="calm",
        speaking_rate=1.5,
    )
    tts = make_tts(server, settings=settings)
    down, up = await run_test(tts, [TTSSpeakFrame('Fish & chips <cheap> "now".')], params=PHONE)
    assert not errors(up)
    [body] = server.requests
    assert body["input"] == {
        "ssml": (
            '<speak><voice name="en-US-Neural2-F" language="en-US" gender="female">'
            '<prosody pitch="+2st" rate="110%" volume="loud"><emphasis level="moderate">'
            '<google:style name="calm">Fish &amp; chips &lt;cheap&gt; "now".</google:style>'
            "</emphasis></prosody></voice></speak>"
        )
    }
    assert "speakingRate" not in body["audioConfig"]  # the Chirp/Journey setting only
    assert abs(audio_secs(down) - 0.5) < 1e-6  # five words, the tags not spoken
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ['Fish & chips <cheap> "now".']


async def test_plain_ssml_has_only_the_voice_element(server: FakeGoogleTTSServer) -> None:
    await run_test(make_tts(server, voice_id="en-GB-Standard-A"), [TTSSpeakFrame("Hi.")])
    assert server.requests[0]["input"] == {
        "ssml": '<speak><voice name="en-GB-Standard-A" language="en-US">Hi.</voice></speak>'
    }


async def test_chirp_and_journey_voices_take_text_and_speaking_rate(
    server: FakeGoogleTTSServer,
) -> None:
    for voice in ("en-US-Chirp3-HD-Aoede", "en-US-Journey-D"):
        settings = GoogleHttpTTSService.Settings(voice=voice, speaking_rate=1.25, pitch="+2st")
        _, up = await run_test(make_tts(server, settings=settings), [TTSSpeakFrame("Hi.")])
        assert not errors(up)
        assert server.requests[-1]["input"] == {"text": "Hi."}
        assert server.requests[-1]["audioConfig"]["speakingRate"] == 1.25
    with pytest.raises(ConfigurationError, match="speaking_rate"):
        make_tts(server, settings=GoogleHttpTTSService.Settings(speaking_rate=3.0))


def test_languages_map_to_googles_tags() -> None:
    assert language_to_google_tts_language(Language("en")) == "en-US"
    assert language_to_google_tts_language(Language("zh")) == "cmn-CN"
    assert language_to_google_tts_language(Language("zh-CN")) == "cmn-CN"
    assert language_to_google_tts_language(Language("no")) == "nb-NO"
    assert language_to_google_tts_language(Language("en-GB")) == "en-GB"
    assert language_to_google_tts_language(Language("es-MX")) == "es-MX"  # passed through


async def test_runtime_settings_apply_from_the_next_sentence(
    server: FakeGoogleTTSServer, caplog: pytest.LogCaptureFixture
) -> None:
    frames: list[Frame] = [
        TTSSpeakFrame("Hello."),
        TTSUpdateSettingsFrame(
            delta=GoogleHttpTTSService.Settings(voice="de-DE-Chirp3-HD-Kore", language=Language.DE)
        ),
        TTSSpeakFrame("Hallo."),
        TTSUpdateSettingsFrame(delta=GoogleHttpTTSService.Settings(speaking_rate=9.0)),
        TTSSpeakFrame("Noch einmal."),
        TTSUpdateSettingsFrame(delta=GoogleHttpTTSService.Settings(speaking_rate=0.8)),
        TTSSpeakFrame("Langsam."),
    ]
    with caplog.at_level(logging.WARNING):
        _, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second, third, fourth = server.requests
    assert first["voice"] == {"languageCode": "en-US", "name": "en-US-Chirp3-HD-Charon"}
    assert second["voice"] == {"languageCode": "de-DE", "name": "de-DE-Chirp3-HD-Kore"}
    assert "speakingRate" not in third["audioConfig"]  # 9.0 is outside 0.25-2.0: refused
    assert "speaking_rate 9.0" in caplog.text
    assert fourth["audioConfig"]["speakingRate"] == 0.8


async def test_settings_win_over_params(server: FakeGoogleTTSServer) -> None:
    params = GoogleHttpTTSService.InputParams(language=Language.FR, pitch="-2st", speaking_rate=1.1)
    await run_test(make_tts(server, voice_id=SSML_VOICE, params=params), [TTSSpeakFrame("Oui.")])
    assert server.requests[0]["voice"] == {"languageCode": "fr-FR", "name": SSML_VOICE}
    assert 'pitch="-2st"' in server.requests[0]["input"]["ssml"]
    # Deprecated params apply only without settings=, as in Pipecat.
    settings = GoogleHttpTTSService.Settings(voice=SSML_VOICE, language="it-IT")
    await run_test(make_tts(server, params=params, settings=settings), [TTSSpeakFrame("Sì.")])
    assert server.requests[1]["voice"] == {"languageCode": "it-IT", "name": SSML_VOICE}
    assert "prosody" not in server.requests[1]["input"]["ssml"]


async def test_interruption_drops_the_sentence_in_flight(server: FakeGoogleTTSServer) -> None:
    server.response_delay = 1.0
    before: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame("A long first sentence. And")]
    after: list[Frame] = [
        InterruptionFrame(),
        SleepFrame(0.05, until=lambda: server.cancelled_requests > 0),
    ]
    down = await run_then(
        make_tts(server), before, after, when=lambda _: bool(server.requests), params=PHONE
    )
    assert server.cancelled_requests == 1  # the request was closed, not waited for
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    server.response_delay = 0.0
    down, up = await run_test(make_tts(server), reply("New reply."), params=PHONE)
    assert not errors(up) and abs(audio_secs(down) - 0.2) < 1e-6


async def test_a_bad_api_key_is_fatal_and_stops_requests(server: FakeGoogleTTSServer) -> None:
    tts = make_tts(server, api_key="wrong")
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    # Google answers an unknown key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
    assert error.fatal and "400" in error.error and "GOOGLE_API_KEY" in error.error
    assert len(server.headers) == 1  # the second sentence was not sent with the same key
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_fatal(server: FakeGoogleTTSServer, status: int) -> None:
    server.statuses.append(status)
    _, up = await run_test(make_tts(server), [TTSSpeakFrame("Hi.")], params=PHONE)
    [error] = errors(up)
    assert error.fatal and str(status) in error.error


async def test_a_busy_server_is_retried_once_and_a_bad_request_is_not_fatal(
    server: FakeGoogleTTSServer,
) -> None:
    server.statuses.append(503)
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Try again.")], params=PHONE)
    assert not errors(up) and len(server.requests) == 2
    assert abs(audio_secs(down) - 0.2) < 1e-6
    tts = make_tts(server, settings=GoogleHttpTTSService.Settings(language=None))
    down, up = await run_test(tts, [TTSSpeakFrame("No language.")], params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "language code is required" in error.error
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


def test_the_address_comes_from_base_url_location_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert GoogleHttpTTSService(api_key="k").base_url == "https://texttospeech.googleapis.com"
    regional = GoogleHttpTTSService(api_key="k", location="europe-west3")
    assert regional.base_url == "https://europe-west3-texttospeech.googleapis.com"
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_URL", "http://127.0.0.1:9/")
    assert GoogleHttpTTSService(api_key="k").base_url == "http://127.0.0.1:9"
    assert GoogleHttpTTSService(api_key="k", base_url="http://h:1").base_url == "http://h:1"


async def test_google_api_key_from_the_environment(
    server: FakeGoogleTTSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_URL", server.base_url)
    _, up = await run_test(GoogleHttpTTSService(), [TTSSpeakFrame("Hi.")], params=PHONE)
    assert not errors(up)
    assert server.headers[0]["x-goog-api-key"] == "test-key"


# ---------------------------------------------------------------------- service accounts


async def test_service_account_credentials_send_a_bearer_token(
    server: FakeGoogleTTSServer,
) -> None:
    info = json.dumps(service_account_info(server.token_uri))
    tts = GoogleHttpTTSService(credentials=info, base_url=server.base_url)
    _, up = await run_test(tts, reply("One.", " Two."), params=PHONE)
    assert not errors(up)
    [claims] = server.token_claims  # one token, fetched at start, used for both sentences
    assert claims["iss"] == "tts@callpipe-test.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert [h["authorization"] for h in server.headers] == ["Bearer fake-access-token-1"] * 2
    assert "x-goog-api-key" not in server.headers[0]


async def test_a_token_about_to_expire_is_renewed(server: FakeGoogleTTSServer) -> None:
    server.token_lifetime_secs = 60  # inside the renewal margin: every use renews it
    info = service_account_info(server.token_uri)
    tts = GoogleHttpTTSService(credentials=json.dumps(info), base_url=server.base_url)
    _, up = await run_test(tts, [TTSSpeakFrame("One."), TTSSpeakFrame("Two.")], params=PHONE)
    assert not errors(up)
    assert [h["authorization"] for h in server.headers] == [
        "Bearer fake-access-token-2",  # the start's token was already too old to use
        "Bearer fake-access-token-3",
    ]


async def test_credentials_path_and_application_default_credentials(
    server: FakeGoogleTTSServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account_info(server.token_uri)))
    tts = GoogleHttpTTSService(credentials_path=str(path), base_url=server.base_url)
    _, up = await run_test(tts, [TTSSpeakFrame("Hi.")], params=PHONE)
    assert not errors(up) and server.headers[-1]["authorization"].startswith("Bearer ")
    # $GOOGLE_APPLICATION_CREDENTIALS wins over $GOOGLE_API_KEY (a Gemini key, say).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("GOOGLE_API_KEY", "gemini-key")
    _, up = await run_test(
        GoogleHttpTTSService(base_url=server.base_url), [TTSSpeakFrame("Hi.")], params=PHONE
    )
    assert not errors(up)
    assert "x-goog-api-key" not in server.headers[-1]
    assert len(server.token_claims) == 2


async def test_refused_credentials_are_fatal(server: FakeGoogleTTSServer) -> None:
    info = service_account_info(server.base_url + "/no-such-token-endpoint")
    tts = GoogleHttpTTSService(credentials=json.dumps(info), base_url=server.base_url)
    down, up = await run_test(tts, [TTSSpeakFrame("Hi.")], params=PHONE)
    assert [e.fatal for e in errors(up)] == [True]
    assert server.headers == []  # nothing was sent without a token
    assert not [f for f in down if isinstance(f, TTSTextFrame)]  # nor recorded as spoken


def test_credentials_without_google_auth_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("google.auth", "google.oauth2", "google.oauth2.service_account"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=r"callpipe\[google\]"):
        GoogleHttpTTSService(credentials="{}")
    with pytest.raises(ConfigurationError, match="GOOGLE_API_KEY"):
        GoogleHttpTTSService()
    assert GoogleHttpTTSService(api_key="k").base_url  # a key needs no google-auth


# ---------------------------------------------------------------------- WAV headers


def test_wav_payload_walks_the_chunks() -> None:
    pcm = tone_pcm(0.01, 8000)
    assert wav_payload(wav_file("LINEAR16", 8000, pcm)) == (1, 8000, pcm)
    ulaw = pcm_to_ulaw(pcm)
    assert wav_payload(wav_file("MULAW", 8000, ulaw)) == (7, 8000, ulaw)
    assert wav_payload(pcm) is None  # bare samples
    # WAVE_FORMAT_EXTENSIBLE: the format is the sub-format's.
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 0) + struct.pack(
        "<H14s", 1, bytes(14)
    )
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4)
    assert wav_payload(b"RIFF" + struct.pack("<I", len(body) + 4) + body + b"abcd") == (
        1,
        16000,
        b"abcd",
    )
    with pytest.raises(ProtocolError):
        wav_payload(b"RIFF\x04\x00\x00\x00WAVE")  # no data chunk
    with pytest.raises(ProtocolError):
        wav_payload(b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00")  # no fmt before data


async def test_an_unreadable_answer_is_reported(server: FakeGoogleTTSServer) -> None:
    server.raw_answers.append(b'{"audioContent": "not base64!"}')
    down, up = await run_test(make_tts(server), reply("Hi.", " Again."), params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "unreadable" in error.error
    assert abs(audio_secs(down) - 0.1) < 1e-6  # the next sentence is spoken
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Again."]
