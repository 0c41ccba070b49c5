"""NvidiaTTSService against FakeRivaServer: one ``SynthesizeOnline`` call per sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("riva.client")

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    FatalErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.nvidia.tts import (
    NvidiaTTSService,
    NvidiaTTSSynthesisMode,
    split_text,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.nvidia_riva import FakeRivaServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.transcriptions.language import Language

from .helpers import PHONE, WIDE, after_barge_in, barge_in, errors, reply, spoken

KEY = "nvapi-test"
FUNCTION = "fn-tts"
MODELS = {"function_id": FUNCTION, "model_name": "magpie-test"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeRivaServer]:
    async with FakeRivaServer(
        api_key=KEY, function_ids=(FUNCTION,), secs_per_word=0.1, chunk_secs=0.05
    ) as server:
        server.drain_secs = 0.05
        yield server


def make_tts(fake: FakeRivaServer, **kwargs: object) -> NvidiaTTSService:
    kwargs.setdefault("api_key", KEY)
    return NvidiaTTSService(
        server=fake.target,
        use_ssl=False,
        model_function_map=MODELS,
        **kwargs,  # type: ignore[arg-type]
    )


def played(down: list[Frame]) -> bytes:
    return b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))


async def test_phone_call_gets_pcm_at_8khz_sentence_by_sentence(fake: FakeRivaServer) -> None:
    down, up = await run_test(make_tts(fake), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    first, second = fake.synthesize_requests
    assert (first.text, second.text) == ("Hi there.", "How are you?")
    assert first.voice_name == "Magpie-Multilingual.EN-US.Aria"
    assert (first.language_code, first.sample_rate_hz, first.encoding) == ("en-US", 8000, 1)
    assert not first.HasField("zero_shot_data")
    assert fake.synthesize_calls == 2
    assert fake.metadata[0] == {
        **fake.metadata[0],
        "authorization": f"Bearer {KEY}",
        "function-id": FUNCTION,
    }
    # The fake's audio byte for byte at the line's rate: nothing was resampled.
    assert played(down) == tone_pcm(0.2, 8000) + tone_pcm(0.3, 8000)
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    assert spoken(down) == ["Hi there.", "How are you?"]


async def test_wideband_mulaw_and_settings_from_the_next_sentence(fake: FakeRivaServer) -> None:
    update = TTSUpdateSettingsFrame(
        delta=NvidiaTTSService.Settings(voice="Magpie-Multilingual.DE-DE.Jason", language="de")
    )
    frames = [*reply("Hello there."), update, *reply("Guten Tag.")]
    tts = make_tts(fake, encoding=3, custom_dictionary={"NVIDIA": "ɛn.vɪ.diː.ʌ"})
    down, up = await run_test(tts, frames, params=WIDE)
    assert not errors(up)
    first, second = fake.synthesize_requests
    assert (first.encoding, first.sample_rate_hz) == (3, 16000)
    assert first.custom_dictionary == "NVIDIA  ɛn.vɪ.diː.ʌ"
    assert (second.voice_name, second.language_code) == ("Magpie-Multilingual.DE-DE.Jason", "de-DE")
    # µ-law from the server, PCM to the pipeline (one sample each way).
    assert len(played(down)) == 2 * int(0.4 * 16000)


async def test_long_sentences_go_in_pieces_of_200_characters(fake: FakeRivaServer) -> None:
    sentence = " ".join(["word"] * 60) + "."
    down, up = await run_test(make_tts(fake), reply(sentence), params=PHONE)
    assert not errors(up)
    pieces = [r.text for r in fake.synthesize_requests]
    assert max(len(p) for p in pieces) <= 200 and len(pieces[0]) == 199
    assert " ".join(pieces) == sentence
    assert split_text("   ") == []


async def test_a_barge_in_cancels_the_call(fake: FakeRivaServer) -> None:
    down = await barge_in(make_tts(fake), params=PHONE, words=100)
    rest = after_barge_in(down)
    assert spoken(rest) == ["Fresh start."]
    assert fake.synthesize_calls == 2


async def test_a_refused_key_is_fatal_and_stops_the_calls(fake: FakeRivaServer) -> None:
    down, up = await run_test(make_tts(fake, api_key="nope"), reply("One.", " Two."), params=PHONE)
    [error] = errors(up)
    assert isinstance(error, FatalErrorFrame) and "UNAUTHENTICATED" in error.error
    assert fake.synthesize_calls == 1
    assert spoken(down) == []


async def test_unavailable_is_retried_once_then_the_sentence_fails(fake: FakeRivaServer) -> None:
    fake.fail_next.append(("UNAVAILABLE", "Service unavailable."))
    down, up = await run_test(make_tts(fake), reply("Hello."), params=PHONE)
    assert not errors(up)
    assert spoken(down) == ["Hello."]
    assert fake.synthesize_calls == 2

    fake.fail_next.extend([("UNAVAILABLE", "Service unavailable.")] * 2)
    down, up = await run_test(make_tts(fake), reply("Lost.", " Said."), params=PHONE)
    [error] = errors(up)
    assert not isinstance(error, FatalErrorFrame) and "UNAVAILABLE" in error.error
    assert spoken(down) == ["Said."]  # the failed sentence is not recorded as spoken


async def test_zero_shot_prompt_and_quality(fake: FakeRivaServer, tmp_path: object) -> None:
    from pathlib import Path

    prompt = Path(str(tmp_path)) / "prompt.wav"
    prompt.write_bytes(b"RIFF-prompt")
    settings = NvidiaTTSService.Settings(quality=30)
    tts = make_tts(fake, zero_shot_audio_prompt_file=prompt, audio_prompt_encoding=1)
    tts2 = make_tts(fake, zero_shot_audio_prompt_file=prompt, settings=settings)
    await run_test(tts, reply("Hi."), params=PHONE)
    await run_test(tts2, reply("Hi."), params=PHONE)
    first, second = fake.synthesize_requests
    assert first.zero_shot_data.audio_prompt == b"RIFF-prompt"
    assert (first.zero_shot_data.encoding, first.zero_shot_data.quality) == (1, 20)
    assert second.zero_shot_data.quality == 30


def test_pipecat_defaults_and_params() -> None:
    tts = NvidiaTTSService(
        api_key="k",
        voice_id="Magpie-Multilingual.FR-FR.Louise",
        params=NvidiaTTSService.InputParams(language=Language("fr-FR"), quality=10),
    )
    s = tts.settings
    assert s.model == "magpie-tts-multilingual"
    assert (s.voice, s.language) == ("Magpie-Multilingual.FR-FR.Louise", "fr-FR")
    assert tts._settings.quality == 10
    assert tts._settings.synthesis_mode == NvidiaTTSSynthesisMode.PER_SENTENCE
    with pytest.raises(ConfigurationError):
        NvidiaTTSService(api_key="k", encoding=2)


async def test_the_cloud_default_gives_way_to_the_fake_variable(
    fake: FakeRivaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_NVIDIA_RIVA_URL", fake.base_url)
    monkeypatch.setenv("NVIDIA_API_KEY", KEY)
    down, up = await run_test(
        NvidiaTTSService(model_function_map=MODELS), reply("Hi."), params=PHONE
    )
    assert not errors(up) and spoken(down) == ["Hi."]
    # An explicit server wins over the variable (and takes no key from the environment).
    assert NvidiaTTSService(server="riva.local:50051")._server == "riva.local:50051"
