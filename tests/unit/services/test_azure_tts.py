"""AzureTTSService / AzureHttpTTSService (REST) against FakeAzureSpeechServer: output formats,
SSML, headers, errors and where the requests go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from xml.etree import ElementTree

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import TTSTextFrame, TTSUpdateSettingsFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.azure.tts import AzureHttpTTSService, AzureTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.azure import FakeAzureSpeechServer

from .helpers import PHONE, audio_secs, errors, reply

SSML = "{http://www.w3.org/2001/10/synthesis}"
MSTTS = "{http://www.w3.org/2001/mstts}"


@pytest.fixture
async def server() -> AsyncIterator[FakeAzureSpeechServer]:
    async with FakeAzureSpeechServer(secs_per_word=0.1) as fake:
        yield fake


def make(
    server: FakeAzureSpeechServer,
    cls: type[AzureHttpTTSService] = AzureHttpTTSService,
    **kw: object,
) -> AzureHttpTTSService:
    return cls(api_key="test-key", private_endpoint=server.base_url + "/", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [AzureHttpTTSService, AzureTTSService])
async def test_a_phone_call_gets_mulaw_and_each_sentence_is_one_request(
    server: FakeAzureSpeechServer, cls: type[AzureHttpTTSService]
) -> None:
    down, up = await run_test(make(server, cls), reply("Hi there.", " Bye now."), params=PHONE)
    assert not errors(up)
    assert [r["text"] for r in server.speech_requests] == ["Hi there.", "Bye now."]
    assert {r["path"] for r in server.speech_requests} == {"/tts/cognitiveservices/v1"}
    headers = server.speech_requests[0]["headers"]
    assert headers["ocp-apim-subscription-key"] == "test-key"
    assert headers["content-type"] == "application/ssml+xml"
    assert headers["x-microsoft-outputformat"] == "raw-8khz-8bit-mono-mulaw"
    assert headers["user-agent"] == "callpipe"
    assert server.speech_requests[0]["voice"] == "en-US-SaraNeural"
    assert abs(audio_secs(down) - 0.4) < 0.01
    # No word boundaries over REST: each sentence's text follows its audio.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hi there.", "Bye now."]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert audio_secs(down[:first_text]) >= 0.2 - 0.01


@pytest.mark.parametrize(
    ("rate", "fmt"),
    [(16000, "raw-16khz-16bit-mono-pcm"), (32000, "raw-44100hz-16bit-mono-pcm")],
)
async def test_wideband_asks_for_pcm_and_resamples_only_a_rate_azure_lacks(
    server: FakeAzureSpeechServer, rate: int, fmt: str
) -> None:
    params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)
    down, up = await run_test(make(server), reply("Hello."), params=params)
    assert not errors(up)
    assert server.speech_requests[0]["headers"]["x-microsoft-outputformat"] == fmt
    assert abs(audio_secs(down) - 0.1) < 0.01


async def test_ssml_carries_the_settings_and_escapes_text_and_attributes(
    server: FakeAzureSpeechServer,
) -> None:
    settings = AzureHttpTTSService.Settings(
        voice="de-DE-KatjaNeural",
        language="de",
        style="cheerful",
        style_degree="1.5",
        role="YoungAdultFemale",
        rate="1.1",
        pitch="+5%",
        volume="loud",
        emphasis="strong",
        effect="eq_telecomhp8k",
        voice_parameters="a='1';b=\"2\"",
        force_locale=True,
    )
    _, up = await run_test(
        make(server, settings=settings), reply('Tom & Jerry <say> "hi" it\'s.'), params=PHONE
    )
    assert not errors(up)
    root = ElementTree.fromstring(server.speech_requests[0]["ssml"])
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "de-DE"
    voice = root.find(f"{SSML}voice")
    assert voice is not None
    assert voice.get("name") == "de-DE-KatjaNeural" and voice.get("effect") == "eq_telecomhp8k"
    assert voice.get("parameters") == "a='1';b=\"2\""
    lang = voice.find(f"{SSML}lang")
    assert lang is not None
    express = lang.find(f"{MSTTS}express-as")
    assert express is not None
    assert express.attrib == {"style": "cheerful", "styledegree": "1.5", "role": "YoungAdultFemale"}
    prosody = express.find(f"{SSML}prosody")
    assert prosody is not None
    assert prosody.attrib == {"rate": "1.1", "pitch": "+5%", "volume": "loud"}
    emphasis = prosody.find(f"{SSML}emphasis")
    assert emphasis is not None and emphasis.get("level") == "strong"
    assert emphasis.text == 'Tom & Jerry <say> "hi" it\'s.'


async def test_plain_ssml_has_no_empty_wrappers_and_updates_apply_next_sentence(
    server: FakeAzureSpeechServer,
) -> None:
    delta = AzureHttpTTSService.Settings(voice="en-GB-RyanNeural", rate="0.9")
    frames = [*reply("One."), TTSUpdateSettingsFrame(delta=delta), *reply("Two.")]
    await run_test(make(server), frames, params=PHONE)
    first, second = (r["ssml"] for r in server.speech_requests)
    assert "prosody" not in first and "express-as" not in first and "<lang" not in first
    assert [r["voice"] for r in server.speech_requests] == ["en-US-SaraNeural", "en-GB-RyanNeural"]
    assert 'rate="0.9"' in second


async def test_older_params_and_voice_as_pipecat_passes_them(server: FakeAzureSpeechServer) -> None:
    params = AzureHttpTTSService.InputParams(language="fr-FR", style="calm", pitch="low")
    await run_test(
        make(server, voice="fr-FR-DeniseNeural", params=params), reply("Salut."), params=PHONE
    )
    ssml = server.speech_requests[0]["ssml"]
    assert server.speech_requests[0]["voice"] == "fr-FR-DeniseNeural"
    assert 'xml:lang="fr-FR"' in ssml and 'style="calm"' in ssml and 'pitch="low"' in ssml


async def test_a_rejected_key_is_fatal_and_names_the_variable(
    server: FakeAzureSpeechServer,
) -> None:
    tts = AzureHttpTTSService(api_key="wrong", private_endpoint=server.base_url)
    _, up = await run_test(tts, reply("Hello.", " Again."), params=PHONE)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "AZURE_SPEECH_API_KEY" in errors(up)[0].error
    assert server.refused == 1  # no request after the refusal


async def test_a_throttled_request_is_retried_once(server: FakeAzureSpeechServer) -> None:
    server.speech_statuses.append(429)
    down, up = await run_test(make(server), reply("Hello."), params=PHONE)
    assert not errors(up)
    assert len(server.speech_requests) == 2 and abs(audio_secs(down) - 0.1) < 0.01


async def test_where_the_requests_go(
    server: FakeAzureSpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLPIPE_AZURE_SPEECH_URL", raising=False)
    monkeypatch.delenv("AZURE_SPEECH_REGION", raising=False)
    monkeypatch.delenv("AZURE_SPEECH_API_KEY", raising=False)
    regional = AzureHttpTTSService(api_key="k", region="eastus")
    assert regional.base_url == "https://eastus.tts.speech.microsoft.com"
    with pytest.raises(ConfigurationError, match="region"):
        AzureHttpTTSService(api_key="k")
    with pytest.raises(ConfigurationError, match="AZURE_SPEECH_API_KEY"):
        AzureHttpTTSService(region="eastus")
    # callpipe fakes: the variable points a region-configured bot at the fake.
    monkeypatch.setenv("CALLPIPE_AZURE_SPEECH_URL", server.base_url)
    monkeypatch.setenv("AZURE_SPEECH_API_KEY", "test-key")
    _, up = await run_test(AzureTTSService(region="eastus"), reply("Hi."), params=PHONE)
    assert not errors(up) and server.speech_requests[0]["path"] == "/tts/cognitiveservices/v1"
