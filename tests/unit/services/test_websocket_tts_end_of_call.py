"""Cartesia and ElevenLabs at the end of a call: a reply whose audio is still streaming from the
provider when the EndFrame arrives is played out in full before the EndFrame, not cut."""

from __future__ import annotations

from callpipe.frames.frames import EndFrame, TTSAudioRawFrame, TTSStoppedFrame
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer

from .helpers import PHONE as PARAMS
from .helpers import audio_secs, reply


async def test_cartesia_plays_the_last_reply_out_before_the_end_frame() -> None:
    async with FakeCartesiaServer(secs_per_word=0.1, chunk_secs=0.04, chunk_delay=0.02) as fake:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=fake.url)
        # The EndFrame follows the reply at once; the audio takes ~0.2 s to stream in.
        down, _ = await run_test(tts, reply("Thanks for calling.", " Goodbye!"), params=PARAMS)
    assert abs(audio_secs(down) - 4 * 0.1) < 1e-6  # every word's audio (0.1 s each)
    kinds = [type(f) for f in down]
    assert kinds[-1] is EndFrame
    assert kinds.index(TTSStoppedFrame) < kinds.index(EndFrame)
    assert max(i for i, k in enumerate(kinds) if k is TTSAudioRawFrame) < kinds.index(EndFrame)


async def test_elevenlabs_plays_the_last_reply_out_before_the_end_frame() -> None:
    async with FakeElevenLabsServer(secs_per_char=0.01, chunk_secs=0.05, chunk_delay=0.02) as fake:
        tts = ElevenLabsTTSService(api_key="test-key", voice_id="v", url=fake.url)
        down, _ = await run_test(tts, reply("Thanks for calling.", " Goodbye!"), params=PARAMS)
    spoken = "Thanks for calling. Goodbye! "
    assert abs(audio_secs(down) - len(spoken) * 0.01) < 1e-6
    kinds = [type(f) for f in down]
    assert kinds[-1] is EndFrame
    assert kinds.index(TTSStoppedFrame) < kinds.index(EndFrame)
    assert max(i for i, k in enumerate(kinds) if k is TTSAudioRawFrame) < kinds.index(EndFrame)
