"""GeminiLiveLLMService: speech to speech with the Gemini Live API over one WebSocket per call.

**Connection.** The socket is Google's ``BidiGenerateContent`` endpoint
(``wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService
.BidiGenerateContent?key=<api key>``). The first message is a ``setup``: model, generation config
(``responseModalities``, voice and language in ``speechConfig``, sampling), the system instruction,
the tools, server VAD options (``realtimeInputConfig``), transcription of both sides, session
resumption and ``historyConfig``. Nothing else is sent before the server's ``setupComplete``.
The setup cannot change on an open session, so when the first context brings a system
instruction or tools other than the ones the setup carried, the service opens a new session with
them (once, at the start of the call). ``http_options={"base_url": ..., "api_version": ...}`` (a
mapping or ``google.genai`` ``HttpOptions``) moves the endpoint; left unset,
``$CALLPIPE_GEMINI_LIVE_URL`` (an origin such as ``http://127.0.0.1:8123``) does.

**Audio.** The caller's audio goes out as ``realtimeInput.audio`` (base64 PCM,
``audio/pcm;rate=N``) at the pipeline's own rate, ``audio_batch_ms`` (40 ms) per message: the
Live API takes any rate named in the MIME type (16 kHz is its native one) and resamples itself,
so a phone call's 8 kHz goes as it is, half the bytes and no resampling here (as Pipecat sends
the frames' rate). The model's 24 kHz PCM
(``serverContent.modelTurn`` ``inlineData`` parts) is resampled to the output rate.

**Frames out.** Per model turn: ``LLMFullResponseStartFrame``, ``TTSStartedFrame``, the audio as
``TTSAudioRawFrame``\\ s, the output transcription as ``LLMTextFrame`` (``append_to_context=False``)
plus ``TTSTextFrame`` (what the assistant aggregator writes once the output transport has played
the audio before it), then ``TTSStoppedFrame`` and ``LLMFullResponseEndFrame`` at
``turnComplete``. The caller's input transcription is gathered and pushed upstream as one
``TranscriptionFrame`` when the model starts answering, or after half a second without more.

**Turns and barge-in.** Gemini's own VAD ends the caller's turns and answers them; context frames
from the user aggregator start a reply only the first time (the greeting, when the context has
messages and ``inference_on_context_initialization``). ``serverContent.interrupted`` (the caller
spoke over the model) becomes an interruption broadcast both ways: the output transport drops the
unplayed audio and the assistant aggregator keeps the words the caller heard. An interruption
raised in the pipeline (local VAD) drops the rest of the current model turn. With
``GeminiVADParams(disabled=True)`` the pipeline's turns drive the model instead:
``activityStart`` / ``activityEnd`` around the caller's speech, audio only in between (plus the
last ``user_audio_preroll_secs`` before the start).

**Context.** Later context frames are the aggregators' record of what the session already heard
and said; what else was added to the context since (an ``LLMMessagesAppendFrame``, typed text)
goes to the session as user turns the model answers. An ``EndFrame`` that arrives while the
model is speaking waits for the end of its turn (30 s at most), so a goodbye is not cut off.

**Function calls.** A ``toolCall`` runs its calls through the usual handlers (``register_function``,
or a handler carried by a ``FunctionSchema``/direct function); the call and its result go into
the context and the results go back in one ``toolResponse``, except those of calls Gemini
withdrew (``toolCallCancellation``, when the caller spoke first). From Gemini 3.8 on the functions
are declared ``BLOCKING`` (the model waits for their results), except on thinking models.

**Errors.** Gemini refuses a bad key by closing the socket with code 1007 (``API key not
valid``): a fatal ``ErrorFrame``. Other closes are reconnected by
:class:`~callpipe.services.websocket_service.ProviderWebsocket`; the new session resumes the old
one when the server gave a resumption handle, else it is given the context's messages again.

Not provided: the File API (``file_api``), Vertex AI authentication, video input, grounding
metadata frames, NON_BLOCKING (asynchronous) functions and their scheduling, and settings
changes on an open session (they apply to the next one, as in Pipecat).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from callpipe.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    StartFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services._env import GEMINI_LIVE_URL_ENV, websocket_origin
from callpipe.services._env import base_url as env_base_url
from callpipe.services._speech_to_speech import (
    BotAudio,
    CallerAudio,
    SpeechToSpeechService,
    answered_call_ids,
    text_of,
)
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.google._gemini import (
    convert_messages,
    convert_tools,
    response_object,
    usage_counts,
)
from callpipe.services.llm_service import ToolCall
from callpipe.services.settings import LLMSettings, unset
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

GEMINI_API_ORIGIN = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
DEFAULT_MODEL = "models/gemini-3.8-live"
DEFAULT_VOICE = "Charon"
OUTPUT_SAMPLE_RATE = 24000
"""The rate of the model's audio."""
DEFAULT_USER_AUDIO_PREROLL_SECS = 0.5
TRANSCRIPT_QUIET_SECS = 0.5
"""Input transcription this long without a new piece is the caller's whole turn."""
_AUDIO_IN = '{"realtimeInput":{"audio":{"data":"%%s","mimeType":"audio/pcm;rate=%d"}}}'
"""``realtimeInput.audio`` around base64 audio (which JSON needs no escaping for), once its
rate is filled in."""

_RATE = re.compile(r"rate=(\d+)")
_GEMINI_VERSION = re.compile(r"gemini(?:-[a-z]+)*-(\d+)(?:\.(\d+))?")
_SPACES = re.compile(r"\s+")


def live_socket_url(origin: str, api_version: str = DEFAULT_API_VERSION) -> str:
    """The ``BidiGenerateContent`` socket under an API origin (``https://`` becomes ``wss://``)."""
    service = f"google.ai.generativelanguage.{api_version}.GenerativeService"
    return f"{websocket_origin(origin)}/ws/{service}.BidiGenerateContent"


# ---------------------------------------------------------------------- options (1.14 names)


class GeminiModalities(StrEnum):
    """What the model answers with: speech (``AUDIO``, the default) or text."""

    TEXT = "TEXT"
    AUDIO = "AUDIO"


class GeminiMediaResolution(StrEnum):
    """Token budget per video frame / image (the API's ``mediaResolution``)."""

    UNSPECIFIED = "MEDIA_RESOLUTION_UNSPECIFIED"
    LOW = "MEDIA_RESOLUTION_LOW"
    MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    HIGH = "MEDIA_RESOLUTION_HIGH"


class StartSensitivity(StrEnum):
    """How readily Gemini's VAD hears the start of speech (``google.genai`` values)."""

    START_SENSITIVITY_UNSPECIFIED = "START_SENSITIVITY_UNSPECIFIED"
    START_SENSITIVITY_HIGH = "START_SENSITIVITY_HIGH"
    START_SENSITIVITY_LOW = "START_SENSITIVITY_LOW"


class EndSensitivity(StrEnum):
    """How readily Gemini's VAD ends a turn (``google.genai`` values)."""

    END_SENSITIVITY_UNSPECIFIED = "END_SENSITIVITY_UNSPECIFIED"
    END_SENSITIVITY_HIGH = "END_SENSITIVITY_HIGH"
    END_SENSITIVITY_LOW = "END_SENSITIVITY_LOW"


class TurnCoverage(StrEnum):
    """Which of the realtime input a user turn takes in (``google.genai`` values)."""

    TURN_COVERAGE_UNSPECIFIED = "TURN_COVERAGE_UNSPECIFIED"
    TURN_INCLUDES_ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
    TURN_INCLUDES_ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"


class GeminiVADParams(BaseModel):
    """Gemini's server-side voice activity detection (None: the server's default)."""

    disabled: bool | None = Field(
        default=None, description="True: the pipeline's own turns drive the model."
    )
    start_sensitivity: StartSensitivity | None = Field(
        default=None, description="How readily the start of speech is detected."
    )
    end_sensitivity: EndSensitivity | None = Field(
        default=None, description="How readily the end of speech is detected."
    )
    prefix_padding_ms: int | None = Field(
        default=None, description="Speech needed before a start is committed, in ms."
    )
    silence_duration_ms: int | None = Field(
        default=None, description="Silence that ends the caller's turn, in ms."
    )


class ContextWindowCompressionParams(BaseModel):
    """Let the server drop the oldest turns when the session's context grows long."""

    enabled: bool = Field(default=False, description="Compress with a sliding window.")
    trigger_tokens: int | None = Field(
        default=None, description="Context size that starts compression (None: the server's)."
    )


class InputParams(BaseModel):
    """The older (deprecated in 1.14) way to configure generation; ``settings=`` wins."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    frequency_penalty: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=4096, ge=1)
    presence_penalty: float | None = Field(default=None, ge=0.0, le=2.0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_k: int | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    modalities: GeminiModalities | None = Field(default=GeminiModalities.AUDIO)
    language: str | None = Field(default="en-US")
    media_resolution: GeminiMediaResolution | None = Field(
        default=GeminiMediaResolution.UNSPECIFIED
    )
    vad: GeminiVADParams | None = Field(default=None)
    context_window_compression: ContextWindowCompressionParams | None = Field(default=None)
    thinking: Any = Field(default=None)
    enable_affective_dialog: bool | None = Field(default=None)
    proactivity: Any = Field(default=None)
    extra: dict[str, Any] | None = Field(default_factory=dict)


# Gemini's speech locales; the first one of a language is what its bare code means.
_LOCALES = (
    "ar-XA bn-IN cmn-CN de-DE en-US en-AU en-GB en-IN es-ES es-US fr-FR fr-CA gu-IN hi-IN "
    "id-ID it-IT ja-JP kn-IN ko-KR ml-IN mr-IN nl-NL pl-PL pt-BR ru-RU ta-IN te-IN th-TH "
    "tr-TR vi-VN"
).split()


def _locale_map() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for locale in _LOCALES:
        mapping[locale] = locale
        mapping.setdefault(locale.split("-")[0], locale)
    mapping.update({"zh": "cmn-CN", "zh-CN": "cmn-CN"})  # Gemini speaks Mandarin as cmn
    return mapping


_LOCALE_OF = _locale_map()


def language_to_gemini_language(language: str) -> str:
    """The locale Gemini's ``speechConfig.languageCode`` takes for ``language``
    (``Language.ES`` → ``"es-ES"``); a tag Gemini does not list passes through as given."""
    return resolve_language(language, _LOCALE_OF, use_base_code=False)


@dataclass
class GeminiLiveLLMSettings(LLMSettings):
    """``GeminiLiveLLMService.Settings``: the LLM settings plus Gemini Live's own.

    ``voice``: a prebuilt voice (``"Charon"``); ``modalities``; ``language`` (a ``Language`` is
    sent as Gemini's locale, a string as given); ``media_resolution``; ``vad``
    (:class:`GeminiVADParams`); ``turn_coverage``; ``context_window_compression``; ``thinking``
    and ``proactivity`` (``google.genai`` ``ThinkingConfig`` / ``ProactivityConfig`` or dicts);
    ``enable_affective_dialog``. They are part of the session's setup: a change applies to the
    next session.
    """

    voice: str | NotGiven = field(default_factory=unset)
    modalities: GeminiModalities | NotGiven = field(default_factory=unset)
    language: str | NotGiven = field(default_factory=unset)
    media_resolution: GeminiMediaResolution | NotGiven = field(default_factory=unset)
    vad: GeminiVADParams | None | NotGiven = field(default_factory=unset)
    turn_coverage: TurnCoverage | str | None | NotGiven = field(default_factory=unset)
    context_window_compression: ContextWindowCompressionParams | dict[str, Any] | NotGiven = field(
        default_factory=unset
    )
    thinking: Any = field(default_factory=unset)
    enable_affective_dialog: bool | NotGiven = field(default_factory=unset)
    proactivity: Any = field(default_factory=unset)

    _aliases: ClassVar[dict[str, str]] = {"voice_id": "voice"}


# ---------------------------------------------------------------------- wire helpers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _wire(value: Any) -> Any:
    """A config object in the API's JSON form: pydantic models (ours or ``google.genai``'s)
    and dicts with camelCase keys, None entries left out, enums as their values."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {_camel(str(k)): _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _http_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, BaseModel):
        return options.model_dump(exclude_none=True)
    if isinstance(options, Mapping):
        return {str(k): v for k, v in options.items() if v is not None}
    raise ConfigurationError(
        "GeminiLiveLLMService: http_options must be a mapping or google.genai HttpOptions"
    )


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def _gemini_tools(tools: Any) -> list[dict[str, Any]]:
    """``tools`` (a ToolsSchema, FunctionSchemas, direct functions, chat-completions tool
    dicts or Gemini's own tool dicts) as the setup's ``tools``."""
    if tools is None or isinstance(tools, NotGiven):
        return []
    functions: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    if isinstance(tools, ToolsSchema):
        functions = [t for t in tools.to_openai() if t.get("type") == "function"]
        native = list((tools.custom_tools or {}).get(AdapterType.GEMINI, []))
    else:
        standard: list[Any] = []
        for tool in tools:
            if isinstance(tool, dict):
                if tool.get("type") == "function":
                    functions.append(tool)
                elif "name" in tool and not tool.keys() - {"name", "description", "parameters"}:
                    functions.append({"type": "function", "function": tool})
                else:
                    native.append(tool)  # e.g. {"google_search": {}} or functionDeclarations
            else:
                standard.append(tool)
        if standard:
            functions += ToolsSchema(standard_tools=standard).to_openai()
    declared = convert_tools(functions) or []
    for tool in declared:
        for declaration in tool["functionDeclarations"]:
            if "parameters" in declaration:
                declaration["parameters"] = _schema_types_upper(declaration["parameters"])
    return declared + native


def _schema_types_upper(schema: Any) -> Any:
    """JSON-Schema ``type`` names as the API's ``Type`` enum spells them (``"string"`` →
    ``"STRING"``), as the SDK sends them."""
    if isinstance(schema, dict):
        return {
            k: v.upper() if k == "type" and isinstance(v, str) else _schema_types_upper(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_schema_types_upper(v) for v in schema]
    return schema


def _token_usage(usage: Mapping[str, Any]) -> LLMTokenUsage:
    """Live ``usageMetadata``: tool results count as prompt, thinking as completion."""
    prompt, completion, reasoning = usage_counts(usage, "responseTokenCount")
    cached = usage.get("cachedContentTokenCount")
    return LLMTokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cache_read_input_tokens=int(cached) if isinstance(cached, int) else None,
        reasoning_tokens=reasoning,
    )


# ---------------------------------------------------------------------- the service


class GeminiLiveLLMService(SpeechToSpeechService):
    """Gemini Live speech to speech (see the module docstring).

    1.14 style: ``GeminiLiveLLMService(api_key=..., settings=GeminiLiveLLMService.Settings(
    model="models/gemini-3.8-live", voice="Puck", system_instruction="..."))``; ``api_key``
    defaults to ``$GOOGLE_API_KEY``. ``audio_batch_ms`` (callpipe's) is how much of the
    caller's audio each ``realtimeInput`` message carries.
    """

    Settings = GeminiLiveLLMSettings
    _settings: GeminiLiveLLMSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        voice_id: str = DEFAULT_VOICE,
        start_audio_paused: bool = False,
        start_video_paused: bool = False,
        system_instruction: str | None = None,
        tools: ToolsSchema | list[Any] | None = None,
        params: InputParams | None = None,
        settings: GeminiLiveLLMSettings | None = None,
        inference_on_context_initialization: bool = True,
        user_audio_preroll_secs: float | None = None,
        file_api_base_url: str = f"{GEMINI_API_ORIGIN}/v1beta/files",
        http_options: Any = None,
        audio_batch_ms: int = 40,
        **kwargs: Any,
    ) -> None:
        store = GeminiLiveLLMSettings(
            model=model or DEFAULT_MODEL,
            system_instruction=system_instruction,
            voice=voice_id,
            temperature=None,
            max_tokens=4096,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            modalities=GeminiModalities.AUDIO,
            language="en-US",
            media_resolution=GeminiMediaResolution.UNSPECIFIED,
            vad=None,
            turn_coverage=None,
            context_window_compression={},
            thinking={},
            enable_affective_dialog=False,
            proactivity={},
        )
        if params is not None and settings is None:
            store.frequency_penalty = params.frequency_penalty
            store.max_tokens = params.max_tokens
            store.presence_penalty = params.presence_penalty
            store.temperature = params.temperature
            store.top_k = params.top_k
            store.top_p = params.top_p
            store.modalities = params.modalities or GeminiModalities.AUDIO
            store.language = params.language or "en-US"
            store.media_resolution = params.media_resolution or GeminiMediaResolution.UNSPECIFIED
            store.vad = params.vad
            store.context_window_compression = params.context_window_compression or {}
            store.thinking = params.thinking or {}
            store.enable_affective_dialog = bool(params.enable_affective_dialog)
            store.proactivity = params.proactivity or {}
        if settings is not None:
            store.apply_update(settings)
        if isinstance(store.language, str):
            store.language = language_to_gemini_language(store.language)
        chosen = store.model if isinstance(store.model, str) else DEFAULT_MODEL
        super().__init__(model=chosen, start_audio_paused=start_audio_paused, **kwargs)
        self._settings.apply_update(store)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "GOOGLE_API_KEY")
        options = _http_options(http_options)
        origin = env_base_url(options.get("base_url"), GEMINI_LIVE_URL_ENV, GEMINI_API_ORIGIN)
        version = str(options.get("api_version") or DEFAULT_API_VERSION)
        self.base_url = live_socket_url(origin, version)
        self._headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
        del start_video_paused, file_api_base_url  # video and the File API: not provided
        self._tools_from_init = tools
        self._register_tool_handlers(tools)
        self._inference_on_init = inference_on_context_initialization
        self._audio_batch_ms = audio_batch_ms
        self._preroll_secs = user_audio_preroll_secs or DEFAULT_USER_AUDIO_PREROLL_SECS
        self._preroll_bytes = 0  # set at start, from the caller's audio rate
        self._audio_in = _AUDIO_IN % 16000
        self._setup_key: tuple[str | None, str] | None = None
        self._pending_seed: bool | None = None
        """Context to give the session once it is set up: True with a reply, False without."""
        self._resume_handle: str | None = None
        self._dropping = False
        self._user_speaking = False
        self._heard: list[str] = []
        self._heard_timer: asyncio.TimerHandle | None = None
        self._synced = 0
        """Context messages the session has (by count): later ones may be new to it."""
        self._heard_log = ""
        """The caller's transcripts pushed so far, without spaces: what the session heard."""
        self._local_turns = False
        self._warned_non_blocking = False
        self._preroll = bytearray()

    # ------------------------------------------------------------------ settings, metadata

    @property
    def _speaks(self) -> bool:
        return self._settings.modalities != GeminiModalities.TEXT

    @property
    def _vad_disabled(self) -> bool:
        vad = self._settings.vad
        return isinstance(vad, GeminiVADParams) and vad.disabled is True

    @property
    def _is_gemini_3(self) -> bool:
        version = self._gemini_version
        return version is not None and version[0] == 3

    @property
    def _gemini_version(self) -> tuple[int, int] | None:
        """(major, minor) from the model's name (``gemini-3.8-live`` → (3, 8))."""
        found = _GEMINI_VERSION.search(str(self._settings.model))
        return (int(found.group(1)), int(found.group(2) or 0)) if found else None

    def _mark_blocking(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """From Gemini 3.8 on, functions run NON_BLOCKING unless declared otherwise: declare
        them BLOCKING (the model waits for the result, as for any LLM service). The thinking
        models take NON_BLOCKING only; there the model may talk on while a function runs."""
        version = self._gemini_version
        if version is None or version < (3, 8):
            return tools
        if "thinking" in str(self._settings.model):
            if tools and not self._warned_non_blocking:
                self._warned_non_blocking = True
                logger.warning("%s: this model runs functions without waiting for them", self)
            return tools
        for tool in tools:
            for declaration in tool.get("functionDeclarations") or ():
                declaration.setdefault("behavior", "BLOCKING")
        return tools

    def service_metadata_frame(self) -> LLMServiceMetadataFrame:
        # Gemini reports no start or end of the caller's speech: no turn strategies to offer.
        return LLMServiceMetadataFrame(service_name=self.name, is_realtime_service=True)

    def set_video_input_paused(self, paused: bool) -> None:
        """Accepted for Pipecat compatibility: video input is not sent."""

    def set_model_modalities(self, modalities: GeminiModalities) -> None:
        """Answer with speech or text from the next session on."""
        self._settings.modalities = modalities

    def set_language(self, language: str) -> None:
        """Speak ``language`` from the next session on."""
        self._settings.language = language_to_gemini_language(language)

    async def update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        if isinstance(delta, GeminiLiveLLMSettings) and isinstance(delta.language, str):
            delta.language = language_to_gemini_language(delta.language)
        changed = await super().update_settings(delta)
        if changed:
            logger.info(
                "%s: %s take effect with the next session (the setup is fixed once sent)",
                self,
                sorted(changed),
            )
        return changed

    def _register_tool_handlers(self, tools: Any) -> None:
        """Handlers carried by the init tools (FunctionSchema, direct functions) run as
        registered ones, unless one is registered under that name."""
        if tools is None:
            return
        if isinstance(tools, list):
            standard = [t for t in tools if not isinstance(t, dict)]
            tools = ToolsSchema(standard_tools=standard) if standard else None
        if not isinstance(tools, ToolsSchema):
            return
        for schema in tools.standard_tools:
            if schema.handler is not None and schema.name not in self._functions:
                self.register_function(schema.name, schema.handler)

    # ------------------------------------------------------------------ connection

    async def start(self, frame: StartFrame) -> None:
        self._local_turns = self._vad_disabled  # fixed for the call: read per packet
        rate = self._in_sample_rate
        self._preroll_bytes = int(rate * 2 * self._preroll_secs)
        self._audio_in = _AUDIO_IN % rate
        self._caller_audio = CallerAudio(
            in_rate=rate,
            wire_rate=rate,
            batch_bytes=rate * 2 * self._audio_batch_ms // 1000,
        )
        self._bot_audio = BotAudio(self._out_sample_rate)
        await self._open()

    async def _open(self) -> None:
        self._session_ready = False
        url = f"{self.base_url}?key={quote(self._api_key, safe='')}"
        await self._connect(url, self._headers, "Check api_key / GOOGLE_API_KEY.")
        await self._send_setup()

    async def disconnect(self) -> None:
        if self._heard_timer is not None:
            self._heard_timer.cancel()
            self._heard_timer = None
        await super().disconnect()

    async def _renew_session(self) -> None:
        """A new session whose setup carries what the context brought."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        try:
            await self._open()
        except Exception as exc:
            await self.report_error(f"{self}: could not open a new session: {exc}")

    async def _on_reconnected(self) -> None:
        # A new socket: it needs the setup first. With a resumption handle the server restores
        # the conversation; without one it gets the context again (no reply).
        await super()._on_reconnected()
        await self._end_response_frames()
        if self._resume_handle is None and self._context is not None:
            self._pending_seed = False
        await self._send_setup()

    async def _on_socket_failed(self, message: str) -> None:
        self._session_ready = False
        ws, self._ws = self._ws, None  # gone for good: nothing more is sent
        reason = ws.last_close[1] if ws is not None and ws.last_close is not None else ""
        if "API key" in reason or "API_KEY" in reason:
            await self.report_error(
                f"{message}. Check api_key / GOOGLE_API_KEY.", fatal=True, reason="auth"
            )
        else:
            await self.report_error(message, reason="disconnected")

    def _instruction_and_tools(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The system instruction (the constructor's, else the context's) and the tools (the
        context's, else the constructor's) the setup carries."""
        given = self._settings.system_instruction
        instruction = given if isinstance(given, str) and given else None
        context_tools = None
        if self._context is not None:
            if instruction is None:
                system, _ = convert_messages(self._context.messages_for_api())
                if system is not None:
                    instruction = str(system["parts"][0]["text"])
            context_tools = self._context.tools_for_api()
        tools = _gemini_tools(context_tools) if context_tools else []
        return instruction, self._mark_blocking(tools or _gemini_tools(self._tools_from_init))

    def _setup_body(self, instruction: str | None, tools: list[dict[str, Any]]) -> dict[str, Any]:
        s = self._settings
        modality = s.modalities if isinstance(s.modalities, GeminiModalities) else "AUDIO"
        generation: dict[str, Any] = {"responseModalities": [str(modality)]}
        sampling = (
            ("temperature", s.temperature),
            ("topP", s.top_p),
            ("topK", s.top_k),
            ("maxOutputTokens", s.max_tokens),
            ("frequencyPenalty", s.frequency_penalty),
            ("presencePenalty", s.presence_penalty),
            ("seed", s.seed),
        )
        generation.update({k: v for k, v in sampling if isinstance(v, int | float)})
        speech: dict[str, Any] = {}
        if isinstance(s.voice, str) and s.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": s.voice}}
        if isinstance(s.language, str) and s.language:
            speech["languageCode"] = s.language
        if speech:
            generation["speechConfig"] = speech
        if isinstance(s.media_resolution, GeminiMediaResolution):
            generation["mediaResolution"] = str(s.media_resolution)
        thinking = _wire(s.thinking)
        if thinking:
            generation["thinkingConfig"] = thinking
        if s.enable_affective_dialog is True:
            generation["enableAffectiveDialog"] = True
        setup: dict[str, Any] = {
            "model": _model_path(str(s.model)),
            "generationConfig": generation,
        }
        if instruction:
            setup["systemInstruction"] = {"parts": [{"text": instruction}]}
        if tools:
            setup["tools"] = tools
        realtime: dict[str, Any] = {}
        if isinstance(s.vad, GeminiVADParams):
            detection = _wire(
                {
                    "disabled": s.vad.disabled,
                    "start_of_speech_sensitivity": s.vad.start_sensitivity,
                    "end_of_speech_sensitivity": s.vad.end_sensitivity,
                    "prefix_padding_ms": s.vad.prefix_padding_ms,
                    "silence_duration_ms": s.vad.silence_duration_ms,
                }
            )
            if detection:
                realtime["automaticActivityDetection"] = detection
        if isinstance(s.turn_coverage, str) and s.turn_coverage:
            realtime["turnCoverage"] = str(s.turn_coverage)
        if realtime:
            setup["realtimeInputConfig"] = realtime
        setup["inputAudioTranscription"] = {}
        setup["outputAudioTranscription"] = {}
        compression = s.context_window_compression
        if isinstance(compression, dict):
            compression = ContextWindowCompressionParams(**compression)
        if isinstance(compression, ContextWindowCompressionParams) and compression.enabled:
            window: dict[str, Any] = {"slidingWindow": {}}
            if compression.trigger_tokens is not None:
                window["triggerTokens"] = compression.trigger_tokens
            setup["contextWindowCompression"] = window
        proactivity = _wire(s.proactivity)
        if proactivity:
            setup["proactivity"] = proactivity
        setup["sessionResumption"] = {"handle": self._resume_handle} if self._resume_handle else {}
        setup["historyConfig"] = {"initialHistoryInClientContent": True}
        return setup

    async def _send_setup(self) -> None:
        instruction, tools = self._instruction_and_tools()
        self._setup_key = (instruction, json.dumps(tools, sort_keys=True))
        await self._send_json({"setup": self._setup_body(instruction, tools)})

    # ------------------------------------------------------------------ frames in

    async def _on_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            await self._on_local_interruption()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
            if self._vad_disabled and self._session_ready:
                await self._send_json({"realtimeInput": {"activityStart": {}}})
                if self._caller_audio is not None:  # the speech onset, heard before the start
                    self._caller_audio.prepend(self._preroll)
                self._preroll.clear()
                await self._flush_audio()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
            self.start_ttfb_metrics()
            if self._vad_disabled and self._session_ready:
                await self._flush_audio()
                await self._send_json({"realtimeInput": {"activityEnd": {}}})
        elif isinstance(frame, InputTextRawFrame):
            if self._session_ready and frame.text.strip():
                await self._send_json({"realtimeInput": {"text": frame.text}})

    def _audio_message(self, data: str) -> str:
        return self._audio_in % data

    async def _send_audio(self, pcm: bytes) -> None:
        if self._local_turns and not self._user_speaking and self._caller_audio is not None:
            # Outside the caller's turn the server ignores audio: keep the last moments.
            self._preroll += self._caller_audio.convert(pcm)
            del self._preroll[: max(0, len(self._preroll) - self._preroll_bytes)]
            return
        await super()._send_audio(pcm)

    async def _on_context(self, context: ChatContext) -> None:
        if self._context is not None:
            self._context = context
            await self._send_appended(context)
            return
        self._context = context
        # Results already in the context were answered before this session.
        messages = context.messages_for_api()
        self._sent_results.update(answered_call_ids(context))
        instruction, tools = self._instruction_and_tools()
        self._pending_seed = self._inference_on_init
        self._synced = len(messages)
        if self._ws is not None and self._setup_key not in (
            None,
            (instruction, json.dumps(tools, sort_keys=True)),
        ):
            await self._renew_session()
        elif self._session_ready:
            await self._seed()

    async def _send_appended(self, context: ChatContext) -> None:
        """Messages added to the context since the session last saw it, which the session did
        not hear or say itself (an ``LLMMessagesAppendFrame``, typed text), as user turns the
        model answers. The caller's transcribed words, the model's own replies and function
        calls are already the session's."""
        messages = context.messages_for_api()
        new, self._synced = messages[self._synced :], len(messages)
        turns: list[dict[str, Any]] = []
        for message in new:
            role, text = message.get("role"), text_of(message.get("content"))
            if role not in ("user", "system", "developer") or not text:
                continue
            if role == "user" and "".join(text.split()) in self._heard_log:
                continue  # what the caller said, written by the user aggregator
            turns.append({"role": "user", "parts": [{"text": text}]})
        if turns and self._session_ready:
            self.start_ttfb_metrics()
            await self._send_json({"clientContent": {"turns": turns, "turnComplete": True}})

    async def _seed(self) -> None:
        """Give the session the context's conversation; with ``_pending_seed`` True the model
        answers it (the greeting)."""
        respond, self._pending_seed = self._pending_seed, None
        if respond is None or self._context is None:
            return
        _, turns = convert_messages(self._context.messages_for_api())
        if not turns and respond:
            instruction, _ = self._instruction_and_tools()
            if instruction:  # nothing to answer but the instruction: answer that
                turns = [{"role": "user", "parts": [{"text": instruction}]}]
        if not turns:
            return
        if respond:
            self.start_ttfb_metrics()
        await self._send_json({"clientContent": {"turns": turns, "turnComplete": respond}})
        if respond and self._is_gemini_3:
            # Gemini 3 models answer client content once realtime input has arrived too.
            await self._send_json({"realtimeInput": {"text": " "}})

    async def _on_local_interruption(self) -> None:
        """An interruption from the pipeline: the rest of this model turn is not played."""
        if self._responding:
            self._dropping = True
            await self._end_response_frames()
        self._bot_audio.reset()

    # ------------------------------------------------------------------ responses

    async def _begin_response(self) -> None:
        if self._responding:
            return
        self._responding = True
        await self._flush_heard()  # the caller's turn is over: its words first
        await self.stop_ttfb_metrics()
        await self.push_frame(LLMFullResponseStartFrame())
        if self._speaks:
            await self.push_frame(TTSStartedFrame())

    async def _end_response_frames(self) -> None:
        if not self._responding:
            return
        self._responding = False
        if self._speaks:
            await self.push_frame(TTSStoppedFrame())
        await self.push_frame(LLMFullResponseEndFrame())
        self._release_end()

    # ------------------------------------------------------------------ server messages

    async def _on_server_message(self, data: dict[str, Any]) -> None:
        if "setupComplete" in data:
            await self._on_setup_complete()
        content = data.get("serverContent")
        if isinstance(content, dict):
            await self._on_server_content(content)
        usage = data.get("usageMetadata")
        if isinstance(usage, dict) and self.usage_metrics_enabled:
            await self.push_metrics(
                LLMUsageMetricsData(
                    processor=self.name, model=self.model_name, value=_token_usage(usage)
                )
            )
        tool_call = data.get("toolCall")
        if isinstance(tool_call, dict):
            self._on_tool_call(tool_call)
        cancelled = data.get("toolCallCancellation")
        if isinstance(cancelled, dict):
            ids = [str(i) for i in cancelled.get("ids") or ()]
            logger.info("%s: Gemini cancelled function calls %s", self, ids)
            self._withdrawn_calls.update(ids)
        update = data.get("sessionResumptionUpdate")
        if isinstance(update, dict) and update.get("resumable") and update.get("newHandle"):
            self._resume_handle = str(update["newHandle"])
        go_away = data.get("goAway")
        if isinstance(go_away, dict):
            logger.info("%s: Gemini closes the session in %s", self, go_away.get("timeLeft"))

    async def _on_setup_complete(self) -> None:
        self._session_ready = True
        if self._pending_seed is not None:
            await self._seed()

    async def _on_server_content(self, content: dict[str, Any]) -> None:
        if content.get("interrupted"):
            await self._on_server_interruption()
        turn = content.get("modelTurn")
        if isinstance(turn, dict) and not self._dropping:
            await self._on_model_turn(turn)
        said = content.get("outputTranscription")
        if isinstance(said, dict) and said.get("text") and not self._dropping:
            await self._on_output_transcript(str(said["text"]))
        heard = content.get("inputTranscription")
        if isinstance(heard, dict) and heard.get("text"):
            self._on_input_transcript(str(heard["text"]))
        if content.get("turnComplete"):
            await self._on_turn_complete()

    async def _on_server_interruption(self) -> None:
        self._dropping = False  # what comes next is the answer to the caller
        self._bot_audio.reset()
        await self.broadcast_interruption()
        await self._end_response_frames()

    async def _on_model_turn(self, turn: dict[str, Any]) -> None:
        for part in turn.get("parts") or ():
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str) and text:
                await self._begin_response()
                if part.get("thought"):
                    await self.push_thought(text)
                    await self.end_thought()
                else:
                    await self.push_llm_text(text)  # the TEXT modality
            blob = part.get("inlineData")
            if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("audio/pcm"):
                await self._on_audio(blob)

    async def _on_audio(self, blob: dict[str, Any]) -> None:
        pcm = base64.b64decode(str(blob.get("data") or ""))
        if not pcm:
            return
        found = _RATE.search(str(blob.get("mimeType")))
        rate = int(found.group(1)) if found else OUTPUT_SAMPLE_RATE
        await self._begin_response()
        await self._push_bot_audio(pcm, rate)

    async def _on_output_transcript(self, text: str) -> None:
        await self._begin_response()
        await self._push_spoken_text(text)

    def _on_input_transcript(self, text: str) -> None:
        self._heard.append(text)
        if self._heard_timer is not None:
            self._heard_timer.cancel()
        loop = asyncio.get_running_loop()
        self._heard_timer = loop.call_later(TRANSCRIPT_QUIET_SECS, self._heard_quiet)

    def _heard_quiet(self) -> None:
        self._heard_timer = None
        self.create_task(self._flush_heard(), "gemini-live-transcript")

    async def _flush_heard(self) -> None:
        if self._heard_timer is not None:
            self._heard_timer.cancel()
            self._heard_timer = None
        text = _SPACES.sub(" ", "".join(self._heard)).strip()
        self._heard.clear()
        if text:
            self._heard_log = (self._heard_log + "".join(text.split()))[-4000:]
            await self._push_caller_text(text)

    async def _on_turn_complete(self) -> None:
        self._dropping = False
        if self._responding:
            await self._push_bot_audio_tail()
        await self._end_response_frames()
        await self._flush_heard()

    # ------------------------------------------------------------------ function calls

    def _on_tool_call(self, tool_call: dict[str, Any]) -> None:
        calls: list[ToolCall] = []
        for call in tool_call.get("functionCalls") or ():
            if not isinstance(call, dict):
                continue
            calls.append(
                ToolCall(
                    id=str(call.get("id") or f"gemini_call_{uuid.uuid4().hex[:12]}"),
                    name=str(call.get("name") or ""),
                    arguments=json.dumps(call.get("args") or {}),
                )
            )
        if calls:
            self.create_task(self._run_calls(calls), "gemini-live-function-calls")

    async def _send_results(self, results: list[tuple[ToolCall, Any]], run_again: bool) -> None:
        # Gemini goes on by itself once it has the results (run_again does not apply); a result
        # for a withdrawn call would be refused (the base does not send those).
        responses = [
            {"id": call.id, "name": call.name, "response": response_object(content, "value")}
            for call, content in results
        ]
        if responses:
            await self._send_json({"toolResponse": {"functionResponses": responses}})
