"""BaseAudioFilter: what ``audio_in_filter``/``audio_out_filter`` on a transport must provide."""

from __future__ import annotations

from abc import ABC, abstractmethod

from callpipe.frames.frames import FilterControlFrame


class BaseAudioFilter(ABC):
    """Processes 16-bit mono PCM chunks at the transport's rate.

    The input transport filters caller audio before VAD and before pushing it on; the output
    transport filters bot audio before volume and mixer. ``start`` is called with the rate
    when the transport starts, ``stop`` when it ends; ``FilterControlFrame`` s reach
    ``process_frame``. ``filter`` may hold audio back (return less) but must not raise on odd
    sizes.
    """

    @abstractmethod
    async def start(self, sample_rate: int) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def process_frame(self, frame: FilterControlFrame) -> None: ...

    @abstractmethod
    async def filter(self, audio: bytes) -> bytes: ...
