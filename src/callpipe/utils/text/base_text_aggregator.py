"""The text types a TTS service tags its text with (Pipecat's ``TextType``).

callpipe has no pluggable text aggregators; this module holds only the enum, at the path
Pipecat bots import it from, so ``text_transforms=[(TextType.SENTENCE, fn)]`` keeps working.
"""

from __future__ import annotations

from enum import StrEnum


class TextType(StrEnum):
    """What a piece of text handed to a TTS service is.

    A TTS service in SENTENCE mode passes ``SENTENCE`` (also for ``TTSSpeakFrame`` text and
    text outside an LLM reply), in TOKEN mode ``TOKEN``. ``WORD`` and ``BACKCHANNEL`` exist for
    Pipecat compatibility; callpipe does not produce them. Being a ``StrEnum``, each member
    equals its string (``TextType.SENTENCE == "sentence"``).
    """

    BACKCHANNEL = "backchannel"
    SENTENCE = "sentence"
    TOKEN = "token"
    WORD = "word"

    def __str__(self) -> str:
        return self.value
