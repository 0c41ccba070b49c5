"""BaseAudioMixer: what ``audio_out_mixer`` on a transport must provide."""

from __future__ import annotations

from abc import ABC, abstractmethod

from callpipe.frames.frames import MixerControlFrame


class BaseAudioMixer(ABC):
    """Mixes its own audio into every chunk the output transport sends.

    With a mixer the output never goes quiet on the wire: while the bot is silent the transport
    still sends a chunk every packet time, ``mix(silence)``, paced like bot audio (so a mixer
    with nothing to play, or disabled, sends silence). ``start`` gets the output (wire) rate;
    ``MixerControlFrame`` s reach ``process_frame`` in order with the bot's audio.
    """

    @abstractmethod
    async def start(self, sample_rate: int) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def process_frame(self, frame: MixerControlFrame) -> None: ...

    @abstractmethod
    async def mix(self, audio: bytes) -> bytes:
        """Return ``audio`` with the mixer's sound added (same length)."""
