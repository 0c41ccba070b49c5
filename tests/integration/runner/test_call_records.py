"""A call through the runner leaves a record (and a recording) that matches what the caller saw.

The spec's pipeline (Deepgram → OpenAI → Cartesia fakes, Silero VAD) runs behind the runner in
local mode; the call simulator speaks eSpeak speech over Twilio's protocol: a greeting, a
request that makes the LLM call a function, a barge-in cutting the long answer, a DTMF key,
a hang-up. The record's turns, heard text and latencies are checked against the simulator's own
measurements of the same call.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.utils import create_transport
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.simulator.recording import speech_regions
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams

pytestmark = pytest.mark.integration

GREETING = "Hello! How can I help you today?"
REQUEST = "I would like to book a table for two"
LONG_ANSWER = " ".join(
    [
        "We have many tables.",
        "Some are by the window and some are in the garden.",
        "The garden opens at six and closes at eleven every day of the week.",
        "Tell me which one you prefer.",
    ]
)


def make_bot(deepgram: str, openai: str, cartesia: str, function_args: list[Any]) -> Any:
    async def bot(runner_args: Any) -> None:
        transport = await create_transport(
            runner_args,
            {
                "twilio": lambda: FastAPIWebsocketParams(
                    audio_in_enabled=True,
                    audio_out_enabled=True,
                    vad_analyzer=SileroVADAnalyzer(),
                )
            },
        )
        stt = DeepgramSTTService(
            api_key="test-key",
            url=deepgram,
            encoding="mulaw",
            live_options=LiveOptions(endpointing=3000),
        )
        llm = OpenAILLMService(api_key="test-key", base_url=openai, model="fake-model")

        async def check_table(params: FunctionCallParams) -> dict[str, Any]:
            function_args.append(params.arguments)
            return {"available": True, "party": params.arguments.get("party")}

        llm.register_function("check_table", check_table)
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=cartesia)
        context = OpenAILLMContext([{"role": "system", "content": "Book tables."}])
        aggregator = llm.create_context_aggregator(context)
        pipeline = Pipeline(
            [transport.input(), stt, aggregator.user(), llm, tts, transport.output()]
            + [aggregator.assistant()]
        )
        task = PipelineTask(
            pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
        )
        runner_args.attach(task)

        @transport.event_handler("on_client_connected")
        async def connected(transport: Any, client: Any) -> None:
            await task.queue_frames([aggregator.user().get_context_frame()])

        @transport.event_handler("on_client_disconnected")
        async def disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)

    return bot


def read_back(directory: Path, record_id: str) -> tuple[Any, list[Path]]:
    record = json.loads((directory / f"{record_id}.json").read_text())
    return record, list(directory.glob(".*.tmp"))


def read_wav(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    with wave.open(str(path)) as w:
        shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
        return shape, np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


async def test_record_matches_the_simulated_call(tmp_path: Path) -> None:
    function_args: list[Any] = []
    async with (
        FakeDeepgramServer() as deepgram,
        FakeOpenAIServer() as openai,
        FakeCartesiaServer(secs_per_word=0.25, chunk_delay=0.03) as cartesia,
    ):
        openai.add_chat_reply(GREETING)
        openai.add_chat_reply(tool_calls=[{"name": "check_table", "arguments": {"party": 2}}])
        openai.add_chat_reply(LONG_ANSWER)
        openai.add_chat_reply("Sure.")
        deepgram.transcripts.extend([REQUEST, "stop please"])
        bot = make_bot(deepgram.url, openai.base_url, cartesia.url, function_args)
        config = RunnerConfig(insecure=True, records_dir=str(tmp_path), recording=True)
        app = create_app(bot, config, credentials=Credentials())
        store = app.state.runner.records
        async with running_server(app) as host:
            async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
                assert len(store.live) == 1
                [live] = store.live.values()
                assert live.state in ("listening", "bot speaking")
                await call.say(REQUEST)
                assert await call.wait_for_bot_speech(timeout=10)
                await call.pause(1.5)
                await call.say("Stop please", wait=False)
                assert await call.wait_for_event("clear", timeout=5) is not None
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
                await call.press("5")
                await call.pause(0.3)
                await call.hang_up()
                result = call.result()
            for _ in range(100):
                if not store.live:
                    break
                await asyncio.sleep(0.05)
            await store.flush()

    assert not store.live
    [(record_id, record)] = store.recent.items()
    # On disk, atomically: the same document, and no temporary file left behind.
    on_disk, leftovers = read_back(tmp_path, record_id)
    assert on_disk == json.loads(json.dumps(record, default=str))
    assert leftovers == []

    assert record["schema"] == "callpipe.call-record" and record["version"] == 1
    assert record["call"]["provider"] == "twilio"
    assert "…" in record["call"]["id"]  # masked
    assert record["end"]["by"] == "caller"
    assert record["end"]["reason"].startswith("caller hung up")

    turns = record["turns"]
    assert [bool(t["caller"]) for t in turns] == [False, True, True]
    greeting, request, barge = turns
    assert greeting["bot"]["generated"] == GREETING
    assert greeting["bot"]["heard"] == GREETING and not greeting["bot"]["interrupted"]
    assert greeting["bot"]["played_start"] >= greeting["bot"]["start"]  # from the first mark
    assert request["caller"]["text"] == REQUEST
    assert request["caller"]["transcripts"][0]["confidence"] == 0.98  # as Deepgram sent it
    assert function_args == [{"party": 2}]
    [fc] = request["function_calls"]
    assert fc["name"] == "check_table" and fc["arguments"] == {"party": 2}
    assert fc["result"] == {"available": True, "party": 2}
    cut = request["bot"]
    assert cut["interrupted"] and cut["generated"] == LONG_ANSWER
    assert (
        cut["heard"]
        and LONG_ANSWER.startswith(cut["heard"].rstrip("."))
        and (cut["heard"] != LONG_ANSWER)
    )
    assert 1.0 < cut["heard_secs"] < 8.0
    assert barge["caller"]["text"] == "stop please"
    assert barge["bot"]["heard"] == "Sure." and not barge["bot"]["interrupted"]
    assert [d["digit"] for d in barge["dtmf"]] == ["5"]
    assert record["counters"]["interruptions"] == 1

    # Latency: the record's "caller quiet → first audio sent" is the simulator's "caller
    # stopped → first bot audio arrived" (loopback adds little; VAD and energy edges differ a bit,
    # and on a CPU-starved machine the caller's reading lags the server's: 0.42 s seen in CI).
    sim_turns = [t for t in result.turns() if t.latency is not None]
    for rec_turn, sim_turn in zip([request, barge], sim_turns[-2:], strict=True):
        lat = rec_turn["latency"]
        assert sim_turn.latency is not None
        assert abs(lat["first_audio_sent_secs"] - sim_turn.latency) < 0.6, (lat, sim_turn)
        assert lat["vad_stop_secs"] and lat["vad_stop_secs"] > 0
        assert 0 < lat["stt_final_secs"] < lat["first_audio_sent_secs"]
        assert lat["llm_ttft_secs"] is not None and lat["llm_ttft_secs"] >= 0
        assert lat["tts_ttfb_secs"] is not None and lat["tts_ttfb_secs"] >= 0
        assert lat["first_audio_played_secs"] is not None
        assert lat["first_audio_played_secs"] >= lat["first_audio_sent_secs"] - 0.05
    # The record's clock and the simulator's differ by the handshake only: the caller's and
    # the bot's speech line up once shifted by one constant.
    offset = request["caller"]["start"] - sim_turns[-2].caller_start
    assert -0.5 < offset < 0.3
    # A barge-in's start is when the VAD declared speech over the bot (start_secs plus Silero's
    # window lag), the simulator's is the first loud packet: 0.42 s apart in full-suite runs.
    assert abs(barge["caller"]["start"] - offset - sim_turns[-1].caller_start) < 0.6

    # The recording: stereo 8 kHz, as long as the call, speech on each side where it happened.
    rec = record["recording"]
    assert rec["complete"] and rec["channels"] == ["caller", "bot"]
    shape, frames = read_wav(tmp_path / rec["name"])
    assert shape == (2, 2, 8000)
    assert abs(len(frames) / 8000 - record["duration_secs"]) < 0.5
    caller_regions = speech_regions(frames[:, 0].copy(), 8000, merge_gap_secs=0.6)
    bot_regions = speech_regions(frames[:, 1].copy(), 8000, merge_gap_secs=0.3)
    sim_caller = result.caller_regions()
    assert len(caller_regions) == len(sim_caller)
    for (start, _), (sim_start, _) in zip(caller_regions, sim_caller, strict=True):
        assert abs(start - offset - sim_start) < 0.3
    # The bot's first words start with the simulator's first played audio, and nothing the bot
    # sent after the barge-in's cut (and never played) is in the recording.
    sim_bot = result.bot_regions()
    assert abs(bot_regions[0][0] - offset - sim_bot[0][0]) < 0.3
    cut_at = record["turns"][1]["bot"]["end"]
    assert cut_at is not None
    after_cut = frames[int((cut_at + 0.1) * 8000) : int((barge["caller"]["end"]) * 8000), 1]
    assert np.abs(after_cut.astype(np.int32)).mean() < 50


@virtual_time
async def test_a_crashing_bot_still_leaves_a_record_and_a_finished_recording(
    tmp_path: Path,
) -> None:
    async def bot(runner_args: Any) -> None:
        transport = await create_transport(
            runner_args,
            {"twilio": lambda: FastAPIWebsocketParams(audio_in_enabled=True)},
        )
        task = PipelineTask(
            Pipeline([transport.input(), transport.output()]),
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )
        runner = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
        await asyncio.sleep(1.0)  # caller audio flows into the recording
        runner.cancel()
        raise RuntimeError("the bot crashed")

    config = RunnerConfig(insecure=True, records_dir=str(tmp_path), recording=True)
    app = create_app(bot, config, credentials=Credentials())
    store = app.state.runner.records
    async with running_server(app) as host:
        async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
            await call.say("hello there", wait=False)
            assert await call.wait_for_hangup(timeout=10)
        await store.flush()
    [record] = store.recent.values()
    assert record["end"]["outcome"] == "error" and record["end"]["by"] == "error"
    assert record["recording"]["complete"]
    shape, frames = read_wav(tmp_path / record["recording"]["name"])
    assert shape == (2, 2, 8000) and len(frames) / 8000 > 0.8
    assert np.abs(frames[:, 0].astype(np.int32)).max() > 1000  # the caller's speech is in it
