"""AWSPollyTTSService against FakeAWSPollyServer: the signed request, SSML and settings, the
line's rate, credentials from the environment, and refused keys and other errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import TTSTextFrame, TTSUpdateSettingsFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.aws.tts import AWSPollyTTSService, language_to_aws_language
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID, FakeAWSPollyServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE, WIDE, audio_secs, errors, reply

SECRET = "test-secret"


@pytest.fixture
async def server() -> AsyncIterator[FakeAWSPollyServer]:
    async with FakeAWSPollyServer(secret_key=SECRET, secs_per_word=0.1) as fake:
        yield fake


def make_tts(server: FakeAWSPollyServer, **kwargs: object) -> AWSPollyTTSService:
    return AWSPollyTTSService(
        api_key=SECRET,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        region="eu-west-1",
        base_url=server.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_phone_call_asks_for_8k_pcm_in_signed_ssml_requests(
    server: FakeAWSPollyServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " Bye now."), params=PHONE)
    assert not errors(up)
    assert server.requests == [
        {"Text": '<speak><lang xml:lang="en-US">Hi there.</lang></speak>', "TextType": "ssml",
         "OutputFormat": "pcm", "VoiceId": "Joanna", "SampleRate": "8000"},
        {"Text": '<speak><lang xml:lang="en-US">Bye now.</lang></speak>', "TextType": "ssml",
         "OutputFormat": "pcm", "VoiceId": "Joanna", "SampleRate": "8000"},
    ]  # fmt: skip
    # The fake checked each signature against its secret; the scope names the region.
    assert server.signed_headers == [["content-type", "host", "x-amz-date"]] * 2
    assert all("/eu-west-1/polly/aws4_request" in h["authorization"] for h in server.headers)
    assert abs(audio_secs(down) - 0.4) < 1e-6
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hi there.", "Bye now."]


async def test_settings_go_into_the_body_and_the_ssml(server: FakeAWSPollyServer) -> None:
    settings = AWSPollyTTSService.Settings(
        voice="Hans",
        language="de",
        engine="standard",
        pitch="+5%",
        rate="fast",
        volume="loud",
        lexicon_names=["names"],
    )
    _, up = await run_test(
        make_tts(server, settings=settings), reply("Tom & Jerry <3."), params=PHONE
    )
    assert not errors(up)
    body = server.requests[0]
    assert body["VoiceId"] == "Hans" and body["Engine"] == "standard"
    assert body["LexiconNames"] == ["names"]
    assert body["Text"] == (
        '<speak><lang xml:lang="de-DE"><prosody pitch="+5%" rate="fast" volume="loud">'
        "Tom &amp; Jerry &lt;3.</prosody></lang></speak>"
    )


async def test_pitch_is_left_out_with_another_engine_and_updates_apply_next_sentence(
    server: FakeAWSPollyServer,
) -> None:
    settings = AWSPollyTTSService.Settings(engine="neural", pitch="+5%")
    update = TTSUpdateSettingsFrame(delta=AWSPollyTTSService.Settings(voice="Matthew", rate="90%"))
    frames = [*reply("One."), SleepFrame(0.2), update, *reply("Two.")]
    _, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    assert not errors(up)
    first, second = server.requests
    assert "prosody" not in first["Text"] and first["VoiceId"] == "Joanna"
    assert '<prosody rate="90%">Two.</prosody>' in second["Text"]
    assert second["VoiceId"] == "Matthew" and second["Engine"] == "neural"


async def test_older_params_and_voice_id(server: FakeAWSPollyServer) -> None:
    params = AWSPollyTTSService.InputParams(engine="neural", language="en-GB", volume="soft")
    await run_test(make_tts(server, voice_id="Amy", params=params), reply("Hi."), params=PHONE)
    body = server.requests[0]
    assert body["VoiceId"] == "Amy" and body["Engine"] == "neural"
    ssml = '<speak><lang xml:lang="en-GB"><prosody volume="soft">Hi.</prosody></lang></speak>'
    assert body["Text"] == ssml


async def test_wideband_gets_16k_and_other_rates_are_resampled(
    server: FakeAWSPollyServer,
) -> None:
    down, _ = await run_test(make_tts(server), reply("One two."), params=WIDE)
    assert server.requests[0]["SampleRate"] == "16000"
    assert abs(audio_secs(down) - 0.2) < 1e-6
    odd = PipelineParams(audio_in_sample_rate=24000, audio_out_sample_rate=24000)
    down, _ = await run_test(make_tts(server), reply("One two."), params=odd)
    assert server.requests[1]["SampleRate"] == "16000"
    assert abs(audio_secs(down) - 0.2) < 0.01


async def test_keys_and_region_come_from_the_environment(
    server: FakeAWSPollyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("CALLPIPE_AWS_POLLY_URL", server.base_url)
    tts = AWSPollyTTSService()
    assert tts.region == "ap-south-1" and tts.base_url == server.base_url
    down, up = await run_test(tts, reply("Hello."), params=PHONE)
    assert not errors(up) and audio_secs(down) > 0
    assert "/ap-south-1/polly/" in server.headers[0]["authorization"]


def test_the_default_address_follows_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_AWS_POLLY_URL", raising=False)
    tts = AWSPollyTTSService(api_key="s", aws_access_key_id="k", region="eu-central-1")
    assert tts.base_url == "https://polly.eu-central-1.amazonaws.com"


async def test_no_credentials_anywhere_is_a_configuration_error(
    server: FakeAWSPollyServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    tts = AWSPollyTTSService(base_url=server.base_url)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        await tts._signer.ensure_credentials()


async def test_a_wrong_secret_is_fatal_and_stops_further_requests(
    server: FakeAWSPollyServer,
) -> None:
    tts = AWSPollyTTSService(
        api_key="wrong", aws_access_key_id=FAKE_ACCESS_KEY_ID, base_url=server.base_url
    )
    _, up = await run_test(tts, reply("Hello.", " Again."), params=PHONE)
    errs = errors(up)
    assert len(errs) == 1 and errs[0].fatal
    assert "403" in errs[0].error and "signature we calculated" in errs[0].error
    assert "AWS_SECRET_ACCESS_KEY" in errs[0].error
    assert len(server.headers) == 1


async def test_an_unknown_key_id_is_fatal(server: FakeAWSPollyServer) -> None:
    tts = AWSPollyTTSService(
        api_key=SECRET, aws_access_key_id="AKIAOTHER", base_url=server.base_url
    )
    _, up = await run_test(tts, reply("Hello."), params=PHONE)
    assert errors(up)[0].fatal and "security token included" in errors(up)[0].error


async def test_a_refused_sentence_is_reported_and_the_next_one_spoken(
    server: FakeAWSPollyServer,
) -> None:
    server.statuses.append(400)  # a ValidationException, as AWS shapes it
    down, up = await run_test(make_tts(server), reply("One.", " Short one."), params=PHONE)
    errs = errors(up)
    assert len(errs) == 1 and not errs[0].fatal
    assert "400" in errs[0].error and "scripted error 400" in errs[0].error
    assert len(server.requests) == 2  # not retried
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_throttling_and_server_errors_are_retried_once(server: FakeAWSPollyServer) -> None:
    server.statuses.extend([429, 500, 500])
    down, up = await run_test(make_tts(server), reply("One.", " Two."), params=PHONE)
    errs = errors(up)
    assert len(errs) == 1 and not errs[0].fatal and "500" in errs[0].error
    assert len(server.requests) == 4  # One: 429 then 200; Two: 500, 500 (given up)
    assert abs(audio_secs(down) - 0.1) < 1e-6


async def test_polly_s_400_throttling_is_retried_once(server: FakeAWSPollyServer) -> None:
    server.throttle = 3
    down, up = await run_test(make_tts(server), reply("One.", " Two."), params=PHONE)
    errs = errors(up)
    assert len(errs) == 1 and not errs[0].fatal and "Rate exceeded" in errs[0].error
    assert len(server.requests) == 4  # One: throttled then throttled (given up); Two: 400, 200
    assert abs(audio_secs(down) - 0.1) < 1e-6


def test_language_codes() -> None:
    assert language_to_aws_language("en") == "en-US"
    assert language_to_aws_language("en-GB") == "en-GB"
    assert language_to_aws_language("zh") == "cmn-CN"
    assert language_to_aws_language("ar") == "arb"
