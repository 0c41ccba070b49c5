"""SpeechmaticsTTSService: Speechmatics' text-to-speech (a preview API), one streamed
``POST /generate/<voice>`` per sentence.

The protocol, as Speechmatics documents it (https://docs.speechmatics.com/text-to-speech/quickstart)
and Pipecat 1.14 uses it:

- the key in ``Authorization: Bearer <key>``; the voice is the last part of the path
  (``sarah``, ``theo``, ``megan``, ``jack``, ...); the query names the audio asked for,
  ``output_format=pcm_16000`` (16-bit mono PCM at 16 kHz, the rate Speechmatics produces), and
  the client, ``sm-app=callpipe``;
- the body is JSON ``{"text": ...}``;
- a 200 answer's body is the raw PCM, streamed as it is made; an error is an HTTP status.

The audio is resampled here to the call's rate as it arrives (on a phone call, 16 kHz to 8 kHz).
No word timing comes back: each sentence's ``TTSTextFrame`` follows its audio.

Pipecat's constructor (``api_key``, ``base_url``, ``voice_id``, ``aiohttp_session``,
``sample_rate``, ``params``, ``settings``) is kept; ``aiohttp_session`` is accepted and not used
(requests go through callpipe's pooled client), and ``sample_rate`` is the rate of the frames
sent on (the pipeline's output rate when None). ``base_url`` left at Speechmatics' may be
replaced by ``$CALLPIPE_SPEECHMATICS_TTS_URL``. Pipecat retries a 503 up to ``max_retries``
times with a backoff of up to 8 seconds; on a call that silence is worse than a skipped
sentence, so callpipe keeps ``max_retries`` as a setting but retries once, as every HTTP TTS
here does (a 429 or 5xx, honouring a ``Retry-After`` up to a second). A 401 or 403 is a
refused key: fatal, and no further requests are made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import SPEECHMATICS_TTS_URL_ENV, defaulted_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SPEECHMATICS_TTS_URL = "https://preview.tts.speechmatics.com"
DEFAULT_VOICE = "sarah"
SPEECHMATICS_SAMPLE_RATE = 16000
"""The rate of the PCM Speechmatics produces (``output_format=pcm_16000``)."""
KEY_HINT = "Check api_key / SPEECHMATICS_API_KEY."
SM_APP = "callpipe"
"""The ``sm-app`` query value: the client's name, as Speechmatics' integrations send it."""


@dataclass
class SpeechmaticsTTSSettings(TTSSettings):
    """``SpeechmaticsTTSService.Settings``: ``voice`` (the path's last part, ``sarah`` by
    default) and ``max_retries`` (Pipecat's retry budget for a busy server; callpipe keeps the
    value and retries once, see the module docstring). ``model`` and ``language`` are not sent:
    the voice decides both."""

    max_retries: int | None | NotGiven = field(default_factory=unset)


class SpeechmaticsTTSService(HTTPStreamTTSService):
    """Speechmatics over ``POST /generate/<voice>`` (see the module docstring).

    1.14 style: ``SpeechmaticsTTSService(api_key=..., aiohttp_session=session,
    settings=SpeechmaticsTTSService.Settings(voice="theo"))``.
    """

    Settings = SpeechmaticsTTSSettings
    _settings: SpeechmaticsTTSSettings
    key_hint = KEY_HINT
    SPEECHMATICS_SAMPLE_RATE = SPEECHMATICS_SAMPLE_RATE

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it and wins)."""

        model_config = ConfigDict(extra="forbid")

        max_retries: int = 5

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SPEECHMATICS_TTS_URL,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: SpeechmaticsTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        super().__init__(sample_rate=sample_rate, **kwargs)
        api_key = resolve_api_key(type(self).__name__, api_key, "SPEECHMATICS_API_KEY")
        store = SpeechmaticsTTSSettings(
            model=None, voice=voice_id or DEFAULT_VOICE, language=None, max_retries=5
        )
        if params is not None and settings is None:
            store.max_retries = params.max_retries
        if settings is not None:
            store.apply_update(settings)
        self._settings.apply_update(store)
        self.configure_http(
            defaulted_base_url(base_url, SPEECHMATICS_TTS_URL_ENV, SPEECHMATICS_TTS_URL),
            {"Authorization": f"Bearer {api_key}"},
            timeout_secs=timeout_secs,
        )

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Speechmatics cannot produce {self.sample_rate} Hz audio")
        self._http()

    @property
    def voice(self) -> str:
        """The voice of the next request."""
        voice = self._settings.voice
        return voice if isinstance(voice, str) and voice else DEFAULT_VOICE

    def request_path(self) -> str:
        """The path of the next request: ``/generate/<voice>``."""
        return f"/generate/{self.voice}"

    def request_params(self) -> dict[str, str]:
        """The query of every request: the audio asked for and the client's name."""
        return {
            "output_format": f"pcm_{SPEECHMATICS_SAMPLE_RATE}",
            "sm-app": SM_APP,
        }

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(
            context_id,
            self.request_path(),
            {"text": text},
            self._read,
            params=self.request_params(),
        )

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, chunk, SPEECHMATICS_SAMPLE_RATE)
