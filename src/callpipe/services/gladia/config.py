"""The option models of Gladia's live session, as a Pipecat 1.14 bot imports them.

Each model is one object of the body of ``POST /v2/live`` (Gladia's field names); ``None``
means "Gladia's default" and is left out of the request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class LanguageConfig(BaseModel):
    """Which languages to expect.

    Parameters:
        languages: Gladia language codes; one fixes the language, several (or none) let Gladia
            detect it among them.
        code_switching: Detect the language again on every utterance.
    """

    languages: list[str] | None = None
    code_switching: bool | None = None


class PreProcessingConfig(BaseModel):
    """What Gladia does to the audio before transcribing it.

    Parameters:
        audio_enhancer: Clean up the audio first.
        speech_threshold: 0-1; higher ignores more background sound.
    """

    audio_enhancer: bool | None = None
    speech_threshold: float | None = None


class CustomVocabularyItem(BaseModel):
    """One vocabulary entry with its own weight.

    Parameters:
        value: The word or phrase.
        intensity: 0-1; how strongly to favour it.
        pronunciations: Ways it may sound.
        language: The language it is said in (the transcription's by default).
    """

    value: str
    intensity: float
    pronunciations: list[str] | None = None
    language: str | None = None


class CustomVocabularyConfig(BaseModel):
    """Words to favour.

    Parameters:
        vocabulary: Plain strings or :class:`CustomVocabularyItem` entries.
        default_intensity: The weight of the plain strings.
    """

    vocabulary: list[str | CustomVocabularyItem] | None = None
    default_intensity: float | None = None


class CustomSpellingConfig(BaseModel):
    """Spellings to force.

    Parameters:
        spelling_dictionary: ``{"written form": ["heard form", ...]}``.
    """

    spelling_dictionary: dict[str, list[str]] | None = None


class TranslationConfig(BaseModel):
    """Live translation of each utterance.

    Parameters:
        target_languages: Language codes to translate into.
        model: ``"base"``, ``"batch"`` or ``"enhanced"``.
        match_original_utterances: Align translations with the original utterances.
        lipsync: Tune translations for lip-sync.
        context_adaptation: Use the conversation so far.
        context: Background text for the translator.
        informal: Prefer informal forms.
    """

    target_languages: list[str] | None = None
    model: str | None = None
    match_original_utterances: bool | None = None
    lipsync: bool | None = None
    context_adaptation: bool | None = None
    context: str | None = None
    informal: bool | None = None


class RealtimeProcessingConfig(BaseModel):
    """Add-ons run during the session.

    Parameters:
        words_accurate_timestamps: Precise per-word times.
        custom_vocabulary: Turn the vocabulary on (with ``custom_vocabulary_config``).
        custom_vocabulary_config: The vocabulary.
        custom_spelling: Turn the spellings on (with ``custom_spelling_config``).
        custom_spelling_config: The spellings.
        translation: Turn translation on (with ``translation_config``).
        translation_config: The translation's options.
        named_entity_recognition: Find named entities.
        sentiment_analysis: Rate the sentiment of each utterance.
    """

    words_accurate_timestamps: bool | None = None
    custom_vocabulary: bool | None = None
    custom_vocabulary_config: CustomVocabularyConfig | None = None
    custom_spelling: bool | None = None
    custom_spelling_config: CustomSpellingConfig | None = None
    translation: bool | None = None
    translation_config: TranslationConfig | None = None
    named_entity_recognition: bool | None = None
    sentiment_analysis: bool | None = None


class MessagesConfig(BaseModel):
    """Which messages Gladia sends on the socket (each ``receive_*`` flag one kind).

    Parameters:
        receive_partial_transcripts: Non-final transcripts (interim results).
        receive_final_transcripts: Final transcripts.
        receive_speech_events: ``speech_start`` / ``speech_end``.
        receive_pre_processing_events: Pre-processing events.
        receive_realtime_processing_events: Add-on results (translation, ...).
        receive_post_processing_events: ``post_transcript`` and the other end-of-session results.
        receive_acknowledgments: An acknowledgment of every audio chunk.
        receive_errors: Errors.
        receive_lifecycle_events: ``start_session``, ``end_session`` and the like.
    """

    receive_partial_transcripts: bool | None = None
    receive_final_transcripts: bool | None = None
    receive_speech_events: bool | None = None
    receive_pre_processing_events: bool | None = None
    receive_realtime_processing_events: bool | None = None
    receive_post_processing_events: bool | None = None
    receive_acknowledgments: bool | None = None
    receive_errors: bool | None = None
    receive_lifecycle_events: bool | None = None


class GladiaInputParams(BaseModel):
    """Pipecat's deprecated ``params=`` form (use ``GladiaSTTService.Settings`` and the
    ``encoding`` / ``bit_depth`` / ``channels`` arguments); read once, at construction, and
    ignored when ``settings`` is given.

    ``encoding`` and ``bit_depth`` default to None here: the service then picks the line's own
    format (see :class:`~callpipe.services.gladia.stt.GladiaSTTService`).
    """

    encoding: str | None = None
    bit_depth: int | None = None
    channels: int | None = 1
    custom_metadata: dict[str, Any] | None = None
    endpointing: float | None = None
    maximum_duration_without_endpointing: int | None = 5
    language_config: LanguageConfig | None = None
    pre_processing: PreProcessingConfig | None = None
    realtime_processing: RealtimeProcessingConfig | None = None
    messages_config: MessagesConfig | None = None
    enable_vad: bool = False
