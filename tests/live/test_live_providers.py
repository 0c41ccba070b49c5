"""One-minute live checks against the real providers: what the fakes cannot prove.

Skipped unless ``CALLPIPE_LIVE=1`` and the provider's key are set (CI has neither; these talk
to the internet). Each test looks at exactly the points of the provider's contract that only
the real server can confirm; run them with a real key after changing a service::

    CALLPIPE_LIVE=1 CARTESIA_API_KEY=... CARTESIA_VOICE_ID=... \\
        python -m pytest tests/live -q -s
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def needs(*variables: str) -> Any:
    missing = [v for v in ("CALLPIPE_LIVE", *variables) if not os.environ.get(v)]
    return pytest.mark.skipif(bool(missing), reason=f"live check: set {', '.join(missing)}")


def errors(up: list[Frame]) -> list[str]:
    return [f.error for f in up if isinstance(f, ErrorFrame)]


def reply(*chunks: str | float) -> list[Frame]:
    frames: list[Frame] = [LLMFullResponseStartFrame()]
    for chunk in chunks:
        frames.append(SleepFrame(chunk) if isinstance(chunk, float) else LLMTextFrame(chunk))
    return [*frames, LLMFullResponseEndFrame()]


@needs("CARTESIA_API_KEY", "CARTESIA_VOICE_ID")
@pytest.mark.parametrize("model", ["sonic-2", "sonic-3"])
async def test_cartesia(model: str) -> None:
    """Bearer + Cartesia-Version accepted; pcm_mulaw 8 kHz audio; a reply with a pause longer
    than the context expiry still spoken in full; speed/emotion accepted for the model."""
    from callpipe.services.cartesia.tts import CartesiaTTSService

    params = CartesiaTTSService.InputParams(speed=1.1 if model == "sonic-3" else "fast")
    tts = CartesiaTTSService(voice_id=os.environ["CARTESIA_VOICE_ID"], model=model, params=params)
    down, up = await run_test(
        tts, reply("Hello, this is a live check. And", 2.0, " here is the rest."), params=PHONE
    )
    assert not errors(up), errors(up)
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    print(f"cartesia {model}: words={words}")
    assert words[-1].startswith("rest")  # nothing lost across the pause
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
    assert sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) > 8000


@needs("DEEPGRAM_API_KEY")
async def test_deepgram() -> None:
    """Repeated keyterm accepted by nova-3; μ-law 8 kHz transcribed with word timings;
    SpeechStarted/UtteranceEnd arrive when asked for; mip_opt_out accepted."""
    from callpipe.audio.espeak import synthesize
    from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions

    options = LiveOptions(
        keyterm=["Acme Corp", "refund"], vad_events=True, utterance_end_ms=1000, mip_opt_out=True
    )
    stt = DeepgramSTTService(live_options=options)
    events: list[str] = []

    @stt.event_handler("on_speech_started")
    async def started(service: Any, message: dict[str, Any]) -> None:
        events.append("SpeechStarted")

    @stt.event_handler("on_utterance_end")
    async def ended(service: Any, message: dict[str, Any]) -> None:
        events.append("UtteranceEnd")

    pcm = synthesize("I would like a refund from Acme Corp", 8000) + bytes(8000 * 2 * 2)
    frames: list[Frame] = [SleepFrame(1.0)]
    for i in range(0, len(pcm), 320):
        frames += [InputAudioRawFrame(pcm[i : i + 320], 8000), SleepFrame(0.02)]
    down, up = await run_test(stt, [*frames, SleepFrame(1.0)], params=PHONE)
    assert not errors(up), errors(up)
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    print(f"deepgram: {[f.text for f in finals]} events={events}")
    assert finals and "refund" in " ".join(f.text for f in finals).lower()
    assert finals[0].result["channel"]["alternatives"][0]["words"]
    assert events[:1] == ["SpeechStarted"] and "UtteranceEnd" in events


@needs("DEEPGRAM_API_KEY")
async def test_deepgram_refusal_keeps_the_reason() -> None:
    """A refused option comes back with Deepgram's own reason (the dg-error header)."""
    from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions

    bad = DeepgramSTTService(live_options=LiveOptions(model="nova-2", keyterm=["x"]))
    _, up = await run_test(bad, [SleepFrame(2.0)], params=PHONE)
    print(f"deepgram refusal: {errors(up)}")
    assert errors(up) and "HTTP 400: " in errors(up)[0]


@needs("ELEVENLABS_API_KEY", "ELEVENLABS_VOICE_ID")
async def test_elevenlabs() -> None:
    """ulaw_8000 + auto_mode accepted; context init with voice settings; the final message's
    key (isFinal / is_final) is read; six replies in a row never close the socket."""
    from callpipe.services.elevenlabs.tts import ElevenLabsTTSService

    params = ElevenLabsTTSService.InputParams(stability=0.5, speed=1.05)
    tts = ElevenLabsTTSService(voice_id=os.environ["ELEVENLABS_VOICE_ID"], params=params)
    frames: list[Frame] = []
    for n in range(6):
        frames += [*reply(f"Reply number {n}."), SleepFrame(0.3)]
    down, up = await run_test(tts, [*frames, SleepFrame(1.0)], params=PHONE)
    assert not errors(up), errors(up)
    print(f"elevenlabs: words={[f.text for f in down if isinstance(f, TTSTextFrame)]}")
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 6


@needs("OPENAI_API_KEY")
async def test_openai_project_header() -> None:
    """Organization/project headers accepted (set OPENAI_PROJECT_ID to a project of the key)."""
    from callpipe.services.openai.llm import OpenAILLMService

    llm = OpenAILLMService(model="gpt-4o-mini")
    down, up = await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Say hi."}])])
    assert not errors(up), errors(up)
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame))


@needs("GOOGLE_API_KEY")
async def test_gemini() -> None:
    """Streaming text, a tool call round trip with its thoughtSignature, and a greeting from a
    context holding only instructions."""
    from callpipe.services.google.llm import GoogleLLMService

    model = os.environ.get("GEMINI_MODEL", "gemini-2.5-flash")
    llm = GoogleLLMService(model=model)
    called: list[dict[str, Any]] = []

    async def get_time(params: FunctionCallParams) -> None:
        called.append(params.arguments)
        await params.result_callback({"time": "10:30"})

    llm.register_function("get_time", get_time)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The current time in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            },
        }
    ]
    context = OpenAILLMContext(
        [{"role": "user", "content": "What time is it in Paris? Use the tool."}], tools=tools
    )
    down, up = await run_test(llm, [OpenAILLMContextFrame(context)])
    assert not errors(up), errors(up)
    answer = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    print(f"gemini {model}: called={called} answer={answer!r}")
    assert called and "10" in answer

    greeting = OpenAILLMContext([{"role": "system", "content": "Greet the caller briefly."}])
    down, up = await run_test(GoogleLLMService(model=model), [OpenAILLMContextFrame(greeting)])
    assert not errors(up), errors(up)
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)).strip()
