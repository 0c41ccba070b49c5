"""``AssemblyAIConnectionParams``: Pipecat 1.14's older, deprecated form of the settings.

Use ``AssemblyAISTTService.Settings`` instead; the service still takes this model through its
``connection_params`` argument (ignored when ``settings`` is given, as in Pipecat).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class AssemblyAIConnectionParams(BaseModel):
    """The socket's options as one model (``None``: AssemblyAI's default, not sent).

    ``min_end_of_turn_silence_when_confident`` is the old name of ``min_turn_silence`` (used
    when ``min_turn_silence`` is not set).
    """

    sample_rate: int = 16000
    encoding: Literal["pcm_s16le", "pcm_mulaw"] = "pcm_s16le"
    end_of_turn_confidence_threshold: float | None = None
    min_turn_silence: int | None = None
    min_end_of_turn_silence_when_confident: int | None = None
    max_turn_silence: int | None = None
    keyterms_prompt: list[str] | None = None
    prompt: str | None = None
    speech_model: str = "universal-3-6-pro"
    language_detection: bool | None = None
    format_turns: bool = True
    speaker_labels: bool | None = None
    vad_threshold: float | None = None

    @property
    def turn_silence(self) -> int | None:
        """``min_turn_silence``, else its old name's value."""
        if self.min_turn_silence is not None:
            return self.min_turn_silence
        return self.min_end_of_turn_silence_when_confident
