"""NvidiaTTSService: NVIDIA speech synthesis (Riva / Magpie TTS NIM) over gRPC.

Each sentence is one ``nvidia.riva.tts.RivaSpeechSynthesis/SynthesizeOnline`` call: one
``SynthesizeSpeechRequest`` per piece of at most 200 characters (NVIDIA's models cap the
length of a request), then the client's half-close; the audio streams back as it is made and
is played as it comes. The messages are the protobuf classes of NVIDIA's own client,
``nvidia-riva-client`` (install ``callpipe[nvidia]``), on a ``grpc.aio`` channel.

The audio is asked for at the pipeline's output rate (``sample_rate_hz``: 8000 on a phone
line, so nothing is resampled), as ``LINEAR_PCM`` (or ``MULAW`` with ``encoding=``, turned into
PCM here). Voice (``settings.voice``, default ``Magpie-Multilingual.EN-US.Aria``) and language
changes apply from the next sentence. A barge-in cancels the call in flight.

Where and who: as for the NVIDIA STT services (``server``, ``use_ssl``, ``api_key`` else
``$NVIDIA_API_KEY`` for the hosted endpoint, ``model_function_map["function_id"]`` as the
``function-id`` metadata).

Errors: ``UNAUTHENTICATED`` / ``PERMISSION_DENIED`` are fatal (and later sentences are not
tried); a server or network status (``UNAVAILABLE`` ...) before any audio is retried once;
otherwise the sentence fails (``sentence_failed``: its unheard text is left out of the context)
with a non-fatal ``ErrorFrame``, and the reply goes on with its next sentence.

Differences from Pipecat 1.14: ``NvidiaTTSSynthesisMode.STITCHED`` is accepted but sentences
are still synthesized one call each; the synthesis config is not fetched at start
(``GetRivaSynthesisConfig``). The deprecated ``set_model`` changes nothing, as in 1.14.
"""

from __future__ import annotations

import asyncio
import logging
import os
import textwrap
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from callpipe.audio.g711 import table_ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services.nvidia._riva import (
    AUTH_HINT,
    NVCF_SERVER,
    REFUSED,
    RETRIED,
    api_key_for,
    call_metadata,
    function_of,
    open_channel,
    protos,
    resolve_server,
    riva_language,
    status_of,
)
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.transcriptions.language import Language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

DEFAULT_MODEL = {
    "function_id": "877104f7-e885-42b9-8de8-f6e4c6303969",
    "model_name": "magpie-tts-multilingual",
}
"""NVIDIA's hosted Magpie multilingual model (its function id changes when NVIDIA redeploys
it; see build.nvidia.com)."""
DEFAULT_VOICE = "Magpie-Multilingual.EN-US.Aria"
MAX_CHUNK_CHARS = 200
TTS_METHOD = "/nvidia.riva.tts.RivaSpeechSynthesis/SynthesizeOnline"


class NvidiaTTSSynthesisMode(StrEnum):
    """How sentences go to NVIDIA: one call each (``PER_SENTENCE``), or, in Pipecat, one call
    per reply for models that stitch sentences (``STITCHED``; here synthesized per sentence)."""

    PER_SENTENCE = "per_sentence"
    STITCHED = "stitched"


@dataclass
class NvidiaTTSSettings(TTSSettings):
    """``NvidiaTTSService.Settings``.

    Parameters:
        quality: Zero-shot voice cloning quality (NVIDIA takes 1 to 40); used only with a
            ``zero_shot_audio_prompt_file``.
        synthesis_mode: See :class:`NvidiaTTSSynthesisMode`.
    """

    quality: int | NotGiven = field(default_factory=unset)
    synthesis_mode: NvidiaTTSSynthesisMode | NotGiven = field(default_factory=unset)


def split_text(text: str) -> list[str]:
    """``text`` in pieces of at most 200 characters, cut between words where it can."""
    text = text.strip()
    if not text:
        return []
    return textwrap.wrap(text, width=MAX_CHUNK_CHARS, break_long_words=True, break_on_hyphens=False)


class NvidiaTTSService(TTSService):
    """Riva ``SynthesizeOnline``, one call per sentence (see the module docstring).

    1.14 style: ``NvidiaTTSService(api_key=..., settings=NvidiaTTSService.Settings(
    voice="Magpie-Multilingual.EN-US.Aria", language=Language.EN_US))``.
    """

    Settings = NvidiaTTSSettings
    _settings: NvidiaTTSSettings

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` (ignored when ``settings`` is given)."""

        language: Language | None = Language("en-US")
        quality: int | None = 20

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server: str = NVCF_SERVER,
        voice_id: str | None = None,
        sample_rate: int | None = None,
        model_function_map: Mapping[str, str] = DEFAULT_MODEL,
        params: InputParams | None = None,
        settings: NvidiaTTSSettings | None = None,
        use_ssl: bool = True,
        custom_dictionary: dict[str, str] | None = None,
        zero_shot_audio_prompt_file: str | os.PathLike[str] | None = None,
        audio_prompt_encoding: int | None = None,
        encoding: int | None = None,
        **kwargs: Any,
    ) -> None:
        _, _, audio = protos()
        function_id, model = function_of(model_function_map)
        store = NvidiaTTSSettings(
            model=model,
            voice=DEFAULT_VOICE,
            language=Language("en-US"),
            quality=20,
            synthesis_mode=NvidiaTTSSynthesisMode.PER_SENTENCE,
        )
        if voice_id is not None:
            store.voice = voice_id
        if params is not None and settings is None:
            logger.warning("NvidiaTTSService: params is deprecated; use settings=")
            if params.language is not None:
                store.language = params.language
            if params.quality is not None:
                store.quality = params.quality
        if settings is not None:
            store.apply_update(settings)
        super().__init__(sample_rate=sample_rate, model=model, **kwargs)
        self._settings = store
        self._server, self._use_ssl = resolve_server(server, use_ssl)
        self._metadata = call_metadata(api_key_for(api_key, server), function_id)
        self._encoding = audio.AudioEncoding.LINEAR_PCM if encoding is None else encoding
        if self._encoding not in (audio.AudioEncoding.LINEAR_PCM, audio.AudioEncoding.MULAW):
            raise ConfigurationError("NvidiaTTSService: encoding must be LINEAR_PCM or MULAW")
        self._custom_dictionary = (
            ",".join(f"{k}  {v}" for k, v in custom_dictionary.items()) if custom_dictionary else ""
        )
        self._prompt_file = (
            Path(zero_shot_audio_prompt_file).expanduser()
            if zero_shot_audio_prompt_file is not None
            else None
        )
        self._prompt: bytes | None = None
        self._prompt_encoding = audio_prompt_encoding or audio.AudioEncoding.ENCODING_UNSPECIFIED
        self._channel: Any = None
        self._refused = False

    # ------------------------------------------------------------------ requests

    async def set_model(self, model: str) -> None:
        """Deprecated, and no effect (as in Pipecat 1.14): the model is chosen at construction
        (``model_function_map``)."""
        warnings.warn(
            "NvidiaTTSService.set_model is deprecated and has no effect; set the model in "
            "the constructor (model_function_map)",
            DeprecationWarning,
            stacklevel=2,
        )

    def synthesis_request(self, text: str) -> Any:
        """The ``SynthesizeSpeechRequest`` for ``text`` with the current settings."""
        _, tts, _ = protos()
        s = self._settings
        request = tts.SynthesizeSpeechRequest(
            text=text,
            language_code=riva_language(s.language or "en-US"),
            sample_rate_hz=self.sample_rate,
            encoding=self._encoding,
        )
        if isinstance(s.voice, str) and s.voice:
            request.voice_name = s.voice
        if self._custom_dictionary:
            request.custom_dictionary = self._custom_dictionary
        if self._prompt is not None:
            request.zero_shot_data.audio_prompt = self._prompt
            request.zero_shot_data.encoding = self._prompt_encoding
            quality = s.quality if isinstance(s.quality, int) else 20
            request.zero_shot_data.quality = quality
        return request

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        if self._prompt_file is not None and self._prompt is None:
            try:
                self._prompt = await asyncio.to_thread(self._prompt_file.read_bytes)
            except OSError as exc:
                raise ConfigurationError(
                    f"{self}: cannot read zero_shot_audio_prompt_file {self._prompt_file}: {exc}"
                ) from exc
        self._open()

    def _open(self) -> Any:
        if self._channel is None:
            self._channel = open_channel(self._server, self._use_ssl)
        return self._channel

    async def disconnect(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    # ------------------------------------------------------------------ speech

    async def run_tts(self, text: str, context_id: str) -> None:
        if self._refused:
            self.sentence_failed(context_id)
            return
        pieces = [p for p in split_text(text) if any(c.isalnum() for c in p)]
        if not pieces:
            return
        requests = [self.synthesis_request(piece) for piece in pieces]
        for attempt in range(2):
            ctx = self._contexts.get(context_id)
            before = ctx.audio_secs if ctx is not None else 0.0
            try:
                await self._synthesize(requests, context_id)
            except Exception as exc:
                status = status_of(exc)
                if status is None:
                    raise
                code, details = status
                got_audio = ctx is not None and ctx.audio_secs > before
                if attempt == 0 and not got_audio and code in RETRIED:
                    logger.info("%s: SynthesizeOnline %s (%s); retrying once", self, code, details)
                    continue
                self.sentence_failed(context_id)
                fatal = code in REFUSED
                self._refused = self._refused or fatal
                await self.report_error(
                    f"{self}: SynthesizeOnline failed: {code}: {details}"
                    + (f" {AUTH_HINT}" if fatal else ""),
                    fatal=fatal,
                    reason="auth" if fatal else "provider",
                )
                return
            self.sentence_audio_done(context_id)
            return

    async def _synthesize(self, requests: list[Any], context_id: str) -> None:
        """One call: the requests, the half-close, the audio played as it comes. Leaving early
        (a barge-in) cancels the call."""
        _, tts, _ = protos()
        call = self._open().stream_stream(
            TTS_METHOD,
            request_serializer=tts.SynthesizeSpeechRequest.SerializeToString,
            response_deserializer=tts.SynthesizeSpeechResponse.FromString,
        )(iter(requests), metadata=self._metadata)
        ulaw = self._encoding == protos()[2].AudioEncoding.MULAW
        try:
            async for response in call:
                if response.audio:
                    audio = table_ulaw_to_pcm(response.audio) if ulaw else response.audio
                    await self.append_audio(context_id, audio)
        finally:
            if not call.done():
                call.cancel()
