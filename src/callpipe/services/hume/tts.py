"""HumeTTSService: Hume's Octave text-to-speech, one streamed ``POST /v0/tts/stream/json`` per
sentence, with word timing.

The request, as Hume documents it (https://dev.hume.ai/reference/text-to-speech-tts/
synthesize-json-streaming) and its ``hume`` SDK builds it (``PostedTts``):

- the key in an ``X-Hume-Api-Key`` header; a JSON body of ``utterances`` (one here:
  ``{"text", "voice": {"id"}, "description"?, "speed"?, "trailing_silence"?}``), ``format``
  (``{"type": "pcm"}``), ``instant_mode`` (``true``: the first audio comes soonest; it needs a
  voice), ``version`` (``"2"``, or ``"1"`` when acting directions are set, as Pipecat picks
  it), ``include_timestamp_types`` (``["word"]``, only with version 2, the one Hume times) and
  ``temperature`` when set;
- the answer is one JSON object per line: ``{"type": "audio", "audio": <base64>, "chunk_index",
  "is_last_chunk", "generation_id", "snippet_id", "request_id", "text", ...}`` and, with
  timestamps, ``{"type": "timestamp", "timestamp": {"type": "word", "text", "time": {"begin",
  "end"}}, ...}`` in milliseconds from the start of the request's audio.

Hume's PCM is 16-bit mono at 48 kHz (its format has no rate to ask for), so the audio is
resampled once, as it arrives, to the pipeline's output rate (8 kHz on a phone call). Each
sentence's words are placed after the audio of the reply's earlier sentences; a sentence sent
without timing (version 1) has its text follow its audio.

Pipecat's constructor (``api_key``, ``voice_id``, ``params``, ``sample_rate``, ``settings``)
is kept; ``sample_rate`` defaults to the pipeline's output rate here (Pipecat's is 48000, its
frames then resampled by the transport). ``base_url`` (Hume's, else ``$CALLPIPE_HUME_URL``),
``voice_provider`` (``"HUME_AI"`` for a Voice Library voice; Hume takes a voice without one as
``CUSTOM_VOICE``) and ``timeout_secs`` are callpipe's. Settings updates apply from the next
sentence; an interruption closes the response in flight.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.errors import ConfigurationError
from callpipe.services._env import HUME_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http_tts import HTTPStreamTTSService, json_lines
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, require_voice, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

HUME_API_URL = "https://api.hume.ai"
STREAM_PATH = "/v0/tts/stream/json"
HUME_SAMPLE_RATE = 48_000
"""The rate of Hume's PCM."""
VOICE_PROVIDERS = ("HUME_AI", "CUSTOM_VOICE")


@dataclass
class HumeTTSSettings(TTSSettings):
    """``HumeTTSService.Settings``: the voice (a Hume voice id), and per utterance
    ``description`` (acting directions; Octave 1 is used while it is set), ``speed`` (a
    multiplier), ``trailing_silence`` (seconds), plus the request's ``temperature``. None: not
    sent (Hume's default)."""

    description: str | None | NotGiven = field(default_factory=unset)
    speed: float | None | NotGiven = field(default_factory=unset)
    trailing_silence: float | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)

    _aliases: ClassVar[dict[str, str]] = {"voice_id": "voice"}


_OPTIONS = ("description", "speed", "trailing_silence")
"""The settings that go in the utterance."""


class HumeTTSService(HTTPStreamTTSService):
    """Hume Octave over its streamed JSON endpoint (see the module docstring).

    1.14 style: ``HumeTTSService(api_key=..., settings=HumeTTSService.Settings(voice="<id>"))``;
    ``voice_id`` and ``params`` are the older forms (``settings`` wins over ``params``).
    """

    Settings = HumeTTSSettings
    _settings: HumeTTSSettings
    key_hint = "Check api_key / HUME_API_KEY."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        description: str | None = None
        speed: float | None = None
        trailing_silence: float | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        params: InputParams | None = None,
        sample_rate: int | None = None,
        settings: HumeTTSSettings | None = None,
        base_url: str | None = None,
        voice_provider: str | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, **kwargs)
        name = type(self).__name__
        api_key = resolve_api_key(name, api_key, "HUME_API_KEY")
        if voice_provider is not None and voice_provider not in VOICE_PROVIDERS:
            raise ConfigurationError(
                f"{name}: voice_provider={voice_provider!r}; use HUME_AI or CUSTOM_VOICE"
            )
        defaults = HumeTTSSettings(
            voice=require_voice(name, voice_id, settings),
            description=None,
            speed=None,
            trailing_silence=None,
            temperature=None,
        )
        if params is not None and settings is None:  # as in Pipecat: settings= replaces params
            for option in _OPTIONS:
                setattr(defaults, option, getattr(params, option))
        self._settings.apply_update(defaults)
        if settings is not None:
            self._settings.apply_update(settings)
        self._voice_provider = voice_provider
        self._spoken: tuple[str, float] = ("", 0.0)
        """(context id, seconds of Hume audio of that reply so far): where its next words go."""
        self.emits_word_timestamps = self.timestamps_requested
        self.configure_http(
            env_base_url(base_url, HUME_URL_ENV, HUME_API_URL),
            {"X-Hume-Api-Key": api_key},
            timeout_secs=timeout_secs,
        )

    def _option(self, name: str) -> Any:
        value = getattr(self._settings, name)
        return value if is_given(value) else None

    @property
    def version(self) -> str:
        """The Octave version asked for: ``"1"`` while acting directions are set, else ``"2"``."""
        return "1" if self._option("description") is not None else "2"

    @property
    def timestamps_requested(self) -> bool:
        """Word timing is asked for (Hume times Octave 2 only)."""
        return self.version == "2"

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        self.emits_word_timestamps = self.timestamps_requested

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v0/tts/stream/json`` body for ``text`` with the current settings."""
        voice: dict[str, Any] = {"id": self._settings.voice}
        if self._voice_provider is not None:
            voice["provider"] = self._voice_provider
        utterance: dict[str, Any] = {"text": text, "voice": voice}
        for option in _OPTIONS:
            value = self._option(option)
            if value is not None:
                utterance[option] = value
        body: dict[str, Any] = {
            "utterances": [utterance],
            "format": {"type": "pcm"},
            "instant_mode": True,
            "version": self.version,
        }
        if self.timestamps_requested:
            body["include_timestamp_types"] = ["word"]
        temperature = self._option("temperature")
        if temperature is not None:
            body["temperature"] = temperature
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, STREAM_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        reply, offset = self._spoken
        if reply != context_id:
            offset = 0.0
        received = 0
        try:
            async for message in json_lines(response, self):
                kind = message.get("type")
                if kind == "audio":
                    audio = message.get("audio")
                    if isinstance(audio, str) and audio:
                        pcm = base64.b64decode(audio)
                        received += len(pcm)
                        await self.append_audio(context_id, pcm, HUME_SAMPLE_RATE)
                elif kind == "timestamp":
                    word = _word(message.get("timestamp"), offset)
                    if word is not None:
                        await self.add_word_timestamps(context_id, [word])
        finally:
            self._spoken = (context_id, offset + received / (2 * HUME_SAMPLE_RATE))


def _word(timestamp: Any, offset: float) -> tuple[str, float, float] | None:
    """``(word, start, end)`` in seconds of the reply from a ``word`` timestamp (None: another
    kind, e.g. a phoneme, or a malformed one)."""
    if not isinstance(timestamp, dict) or timestamp.get("type") != "word":
        return None
    text, time = timestamp.get("text"), timestamp.get("time")
    if not isinstance(text, str) or not isinstance(time, dict):
        return None
    begin, end = time.get("begin"), time.get("end")
    if not isinstance(begin, int | float) or not isinstance(end, int | float):
        return None
    return text, offset + begin / 1000, offset + end / 1000
