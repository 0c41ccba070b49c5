"""AzureSTTService: Azure Speech recognition over its REST API for short audio.

Pipecat 1.14 streams the call to Microsoft's native Speech SDK (continuous recognition, with
interim results). callpipe installs nothing native, so it uses the documented REST API for short
audio instead (https://learn.microsoft.com/azure/ai-services/speech-service/rest-speech-to-text-short):
each VAD-bounded utterance is one ``POST .../speech/recognition/conversation/cognitiveservices/v1``
with

- the query ``language`` (Azure's locale for the settings' language, ``en-US`` by default),
  ``format=detailed``, ``profanity`` when set (``masked``, ``removed``, ``raw``) and ``cid``
  (``endpoint_id=``, a custom model's endpoint);
- the headers ``Ocp-Apim-Subscription-Key``, ``Accept: application/json`` and
  ``Content-Type: audio/wav; codecs=audio/pcm; samplerate=16000``, the one WAV format the API
  documents: an 8 kHz phone call's utterance is resampled to 16 kHz once, when it ends.

The answer's ``RecognitionStatus`` ``Success`` gives one final ``TranscriptionFrame`` (marked
``finalized``) of the best ``NBest`` entry's ``Display`` text (or ``DisplayText``), carrying
the whole answer as its ``result``. ``NoMatch``, ``InitialSilenceTimeout`` and
``BabbleTimeout`` give nothing; ``Error`` is reported as a non-fatal ``ErrorFrame``.
The API takes at most 60 seconds of audio: a longer utterance is cut there. There are no
interim results, and the transcript comes after the caller stopped (one request's time).
``segmentation_silence_timeout_ms`` has no REST counterpart (the pipeline's VAD cuts the
utterances): it is kept in the settings and not sent. A 401/403 is a refused key (fatal); a
network error, 429 or 5xx is tried once more. Settings updates apply from the next utterance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from callpipe.audio.resample import resample_once
from callpipe.audio.wav import pcm_to_wav, read_wav
from callpipe.frames.frames import StartFrame
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.azure.common import (
    API_KEY_ENV,
    STT_PATH,
    language_to_azure_language,
    speech_origin,
)
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import SegmentedSTTService
from callpipe.utils.http_pool import pooled_transport
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

AZURE_TTFS_P99 = 1.2
"""The default ``ttfs_p99_latency`` (seconds from the end of speech to the transcript) of one
short-audio request."""
RECOGNITION_RATE = 16000
"""The sample rate of the only WAV format the REST API for short audio documents."""
MAX_UTTERANCE_SECS = 60.0
CONTENT_TYPE = f"audio/wav; codecs=audio/pcm; samplerate={RECOGNITION_RATE}"

AzureProfanity = Literal["raw", "masked", "removed"]
"""Azure's ``profanity`` handling: as heard, masked with asterisks (Azure's default), dropped."""


@dataclass
class AzureSTTSettings(STTSettings):
    """``AzureSTTService.Settings``: ``language`` (sent as Azure's locale), ``profanity``
    (the ``profanity`` query parameter; None: Azure's default, ``masked``) and
    ``segmentation_silence_timeout_ms`` (accepted for Pipecat's bots; not sent, see the module
    docstring)."""

    profanity: AzureProfanity | None | NotGiven = field(default_factory=unset)
    segmentation_silence_timeout_ms: int | None | NotGiven = field(default_factory=unset)


class AzureSTTService(SegmentedSTTService):
    """Azure speech-to-text, one REST request per utterance (see the module docstring).

    ``api_key`` (else ``$AZURE_SPEECH_API_KEY``), ``region`` (else ``$AZURE_SPEECH_REGION``)
    or ``private_endpoint`` (a custom-domain origin, which wins over ``region``;
    ``$CALLPIPE_AZURE_SPEECH_URL`` stands for one), ``endpoint_id`` (a custom model).
    ``language`` is Pipecat's older form of ``settings=Settings(language=...)``.
    """

    Settings = AzureSTTSettings
    _settings: AzureSTTSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        region: str | None = None,
        language: str | None = "en-US",
        sample_rate: int | None = None,
        private_endpoint: str | None = None,
        endpoint_id: str | None = None,
        settings: AzureSTTSettings | None = None,
        ttfs_p99_latency: float | None = AZURE_TTFS_P99,
        max_utterance_secs: float = MAX_UTTERANCE_SECS,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            language=language or "en-US",
            sample_rate=sample_rate,
            ttfs_p99_latency=ttfs_p99_latency,
            max_utterance_secs=min(max_utterance_secs, MAX_UTTERANCE_SECS),
            **kwargs,
        )
        name = type(self).__name__
        self._api_key = resolve_api_key(name, api_key, API_KEY_ENV)
        if region and private_endpoint:
            logger.warning("%s: both region and private_endpoint given; region is ignored", name)
        self._origin, prefix = speech_origin(name, "stt", region, private_endpoint)
        self._path = prefix + STT_PATH
        self._endpoint_id = endpoint_id
        defaults = self._settings
        defaults.profanity = None
        defaults.segmentation_silence_timeout_ms = None
        if settings is not None:
            defaults.apply_update(settings)
            language_set = defaults.language
            self._language = language_set if isinstance(language_set, str) else None
        self._timeout_secs = timeout_secs
        self._client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        """The origin the requests go to."""
        return self._origin

    def language_to_service_language(self, language: str) -> str | None:
        """Azure's locale for ``language`` (see :func:`language_to_azure_language`)."""
        return language_to_azure_language(language)

    def query(self) -> dict[str, str]:
        """The request's query for the current settings."""
        s = self._settings
        language = s.language if isinstance(s.language, str) and s.language else "en-US"
        query = {"language": language_to_azure_language(language), "format": "detailed"}
        if is_given(s.profanity) and s.profanity:
            query["profanity"] = s.profanity
        if self._endpoint_id:
            query["cid"] = self._endpoint_id
        return query

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._origin,
                headers={
                    "Ocp-Apim-Subscription-Key": self._api_key,
                    "Accept": "application/json",
                    "Content-Type": CONTENT_TYPE,
                },
                timeout=httpx.Timeout(self._timeout_secs, connect=5.0),
                transport=pooled_transport(),
            )
        return self._client

    async def start(self, frame: StartFrame) -> None:
        self._http()

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run_stt(self, wav: bytes) -> str | None:
        fmt, pcm = read_wav(wav)
        if fmt.sample_rate != RECOGNITION_RATE:
            wav = pcm_to_wav(
                resample_once(pcm, fmt.sample_rate, RECOGNITION_RATE), RECOGNITION_RATE
            )
        response = await self._post_utterance(
            self._http(),
            f"{self._path}?{urlencode(self.query())}",
            content=wav,
            origin=self._origin,
            auth_hint=f"Check api_key / {API_KEY_ENV}.",
        )
        if response is None:
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            await self.report_error(f"{self}: the answer is not a JSON object", reason="provider")
            return None
        status = answer.get("RecognitionStatus")
        if status == "Error":
            await self.report_error(
                f"{self}: Azure could not recognize the utterance", reason="provider"
            )
            return None
        if status != "Success":
            logger.debug("%s: nothing recognized (%s)", self, status)
            return None
        await self.push_transcript(_best_text(answer), final=True, finalized=True, result=answer)
        return None


def _best_text(answer: dict[str, Any]) -> str:
    """The display text of a ``Success`` answer: the first ``NBest`` entry's (``detailed``),
    else ``DisplayText`` (``simple``)."""
    best = answer.get("NBest")
    if isinstance(best, list) and best and isinstance(best[0], dict):
        display = best[0].get("Display")
        if isinstance(display, str):
            return display
    text = answer.get("DisplayText")
    return text if isinstance(text, str) else ""
