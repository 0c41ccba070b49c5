"""Keyword arguments no class of a processor takes: Pipecat drops them silently; callpipe says so
once per class, so a Pipecat option it lacks (or a typo) does not vanish unnoticed."""

from __future__ import annotations

import logging

import pytest

from callpipe.processors.frame_processor import FrameProcessor
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.tts_service import TextAggregationMode

LOGGER = "callpipe.processors.frame_processor"


class _Mine(FrameProcessor):
    pass


def _ignored(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "no such option" in r.getMessage()]


def test_an_unknown_argument_is_named_once_per_class(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _Mine(colour="blue", size=3)
        _Mine(colour="red")  # the same class and name: said already
        _Mine(shape="round")
        DeepgramSTTService(api_key="k", colour="blue")  # another class: said again
    assert _ignored(caplog) == [
        "_Mine: ignoring 'colour', 'size': no such option in callpipe",
        "_Mine: ignoring 'shape': no such option in callpipe",
        "DeepgramSTTService: ignoring 'colour': no such option in callpipe",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "no such" in r.message)


def test_pipecat_1_14_s_arguments_of_the_services_are_all_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every keyword Pipecat 1.14's constructors of these services take (names read from its
    # published package), with plausible values: none may fall through to FrameProcessor.
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DeepgramSTTService(
            api_key="k",
            base_url="api.deepgram.com",
            sample_rate=8000,
            channels=1,
            multichannel=False,
            callback="https://example.test/cb",
            callback_method="post",
            tag="calls",
            mip_opt_out=True,
            addons={"smart_format": True},
            ttfs_p99_latency=0.3,
        )
        CartesiaTTSService(
            api_key="k",
            voice_id="v",
            url="wss://api.cartesia.ai/tts/websocket",
            sample_rate=8000,
            container="raw",
            extra_headers={"X-Team": "a"},
            text_aggregation_mode=TextAggregationMode.SENTENCE,
        )
        CartesiaTTSService(api_key="k", voice_id="v", aggregate_sentences=True)
        ElevenLabsTTSService(
            api_key="k",
            voice_id="v",
            url="wss://api.elevenlabs.io",
            sample_rate=8000,
            auto_mode=True,
            enable_ssml_parsing=False,
            enable_logging=True,
            pronunciation_dictionary_locators=[
                {"pronunciation_dictionary_id": "d", "version_id": "1"}
            ],
            text_aggregation_mode="token",
        )
        OpenAILLMService(
            api_key="k",
            model="m",
            service_tier="flex",
            run_in_parallel=False,
            group_parallel_tools=True,
        )
    assert _ignored(caplog) == []


class _Other(FrameProcessor):
    pass


def test_pipecat_s_frame_processor_options_are_named_with_their_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Pipecat 1.14's FrameProcessor takes metrics= and its BaseObject task_manager=: accepted,
    # said once per class with why they do nothing here, never as "no such option".
    with caplog.at_level(logging.WARNING):
        _Other(metrics=object(), task_manager=object())
        _Other(metrics=object())
        _Mine(enable_direct_mode=True, metrics=object())
    messages = [r.getMessage() for r in caplog.records]
    assert _ignored(caplog) == []
    assert messages == [
        "_Other: task_manager is accepted for Pipecat 1.14 bots and ignored: "
        "each object owns its tasks in callpipe",
        "_Other: metrics is accepted for Pipecat 1.14 bots and ignored: "
        "processors report metrics as MetricsFrames in callpipe",
        "_Mine: metrics is accepted for Pipecat 1.14 bots and ignored: "
        "processors report metrics as MetricsFrames in callpipe",
    ]
