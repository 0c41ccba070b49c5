"""OpenAIRealtimeLLMService: speech to speech with OpenAI Realtime (GA interface) over WebSocket.

One socket per call to ``wss://api.openai.com/v1/realtime?model=...``, authenticated with
``Authorization: Bearer <key>``. The server's ``session.created`` is answered with a
``session.update`` (``type: "realtime"``): instructions, tools, turn detection, and the audio
formats. Audio goes out only once the server has confirmed the session (``session.updated``).

**Audio.** On a phone line (pipeline at 8 kHz) both directions are ``audio/pcmu``: the caller's
PCM is encoded back to the G.711 mu-law bytes the line carried (exact, no resampling) and the
model's mu-law is decoded for the output transport, which encodes it again for the line (also
exact). At any other rate the session uses ``audio/pcm`` at 24 kHz and the project's stream
resampler. The caller's audio is sent in ``input_audio_buffer.append`` messages of
``audio_batch_ms`` (40 ms: two 20 ms packets per message).

**Frames out.** Per response: ``LLMFullResponseStartFrame``, ``TTSStartedFrame``, the model's
audio as ``TTSAudioRawFrame``\\ s, its transcript as ``LLMTextFrame`` (``append_to_context=False``,
for observers) plus ``TTSTextFrame`` (what the assistant aggregator records), then
``TTSStoppedFrame`` and ``LLMFullResponseEndFrame``. The caller's transcript (input transcription
must be configured) goes upstream as a ``TranscriptionFrame``, to the user aggregator.

**Turns.** With server turn detection (the default) the server's ``speech_started`` and
``speech_stopped`` become ``ProposedUserStartedSpeakingFrame`` and
``ProposedUserStoppedSpeakingFrame`` (both ways). The service recommends
``ExternalUserTurnStrategies`` in its ``LLMServiceMetadataFrame(is_realtime_service=True)``,
so the user aggregator turns them into the caller's turn and cuts the bot off (it also takes
the turn's transcript, which OpenAI sends after the stop). The server answers each turn
itself; a context frame from the aggregator starts a response only the first time (the
greeting), or in manual mode (``turn_detection=False``: a ``UserStoppedSpeakingFrame`` commits
the input buffer and asks for a response).

**Barge-in.** An ``InterruptionFrame`` sends ``response.cancel`` while a response is running
(late audio of the cancelled response is dropped). The output transport then reports what the
caller heard (``BotInterruptedFrame.heard_secs``, upstream); the interrupted audio item is
truncated there with ``conversation.item.truncate`` (``audio_end_ms``, never past the audio
received), so the model's memory of its reply matches what was heard. With no report (nothing
was played yet), the item is truncated at 0 ms when the next turn starts.

**End of call.** An ``EndFrame`` that arrives while a response is running waits for its end
(30 s at most), so a goodbye is heard whole.

**Function calls.** ``response.function_call_arguments.done`` calls are run when their response
is done, through the usual handlers (``register_function``; frames and context as for any LLM
service). Each result goes back as a ``function_call_output`` item, then ``response.create``
(unless every result said ``run_llm=False``).

**Errors.** A rejected key at the handshake is fatal (``ServiceAuthError``); a server ``error``
event becomes an ``ErrorFrame`` (fatal for ``invalid_api_key``), except the harmless
``response_cancel_not_active`` / ``conversation_already_has_active_response``. A dropped socket
is reconnected by :class:`~callpipe.services.websocket_service.ProviderWebsocket`; the new
session is given the context's messages again (text only) once it is configured.

Not done: video input, ``retrieve_conversation_item``, ``LLMMessagesAppendFrame`` items,
replaying earlier tool calls of the context as function-call items (only message text is sent).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services._env import OPENAI_REALTIME_URL_ENV, defaulted_base_url
from callpipe.services._speech_to_speech import (
    BotAudio,
    CallerAudio,
    SpeechToSpeechService,
    answered_call_ids,
    text_of,
)
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.llm_service import ToolCall
from callpipe.services.openai.realtime.events import (
    OPENAI_SAMPLE_RATE,
    AudioConfiguration,
    AudioFormat,
    AudioInput,
    AudioOutput,
    ImageDetail,
    PCMAAudioFormat,
    PCMAudioFormat,
    PCMUAudioFormat,
    SessionProperties,
)
from callpipe.services.settings import LLMSettings, unset
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.types import NOT_GIVEN, NotGiven

logger = logging.getLogger(__name__)

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
_QUIET_ERRORS = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response"}
)
_FATAL_ERRORS = frozenset({"invalid_api_key"})
_BYTES_PER_MS = {"audio/pcm": 48.0, "audio/pcmu": 8.0, "audio/pcma": 8.0}
_ENCODERS = {"audio/pcmu": pcm_to_ulaw, "audio/pcma": pcm_to_alaw}
_APPEND = '{"type":"input_audio_buffer.append","audio":"%s"}'
"""``input_audio_buffer.append`` around base64 audio (which JSON needs no escaping for)."""


@dataclass
class OpenAIRealtimeLLMSettings(LLMSettings):
    """``OpenAIRealtimeLLMService.Settings``: the LLM settings plus ``session_properties``.

    ``model`` and ``system_instruction`` win over the ``model`` / ``instructions`` of
    ``session_properties``. An update of ``session_properties`` or ``system_instruction``
    sends a new ``session.update``; the model is fixed once connected (it is in the URL).
    """

    session_properties: SessionProperties | NotGiven = field(default_factory=unset)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> OpenAIRealtimeLLMSettings:
        """The dict form: keys of :class:`SessionProperties` (``audio``, ``tools``, ...; not
        ``model``) make a new ``session_properties``, the rest are the usual settings."""
        session_keys = set(SessionProperties.model_fields) - {"model", "type"}
        session = {k: v for k, v in settings.items() if k in session_keys}
        delta = super().from_mapping({k: v for k, v in settings.items() if k not in session})
        if session:
            delta.session_properties = SessionProperties(**session)
        return delta


@dataclass
class _AudioReply:
    """The assistant audio item being received (or played): where to truncate it."""

    item_id: str
    content_index: int
    received_ms: float = 0.0


def _tool_dicts(tools: Any) -> list[dict[str, Any]] | None:
    """Tools in the Realtime API's form (``{"type": "function", "name", ...}``)."""
    if tools is None or isinstance(tools, NotGiven):
        return None
    if isinstance(tools, ToolsSchema):
        tools = tools.standard_tools
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, FunctionSchema):
            out.append({"type": "function", **tool.to_default_dict()})
        elif isinstance(tool, dict):
            function = tool.get("function")
            if tool.get("type") == "function" and isinstance(function, dict):
                out.append({"type": "function", **function})  # chat-completions form
            else:
                out.append(tool)
    return out


def _format_for(given: AudioFormat | None, sample_rate: int) -> str:
    """The configured format, else G.711 mu-law at 8 kHz (a phone line) and PCM otherwise."""
    if given is not None:
        return given.type
    return "audio/pcmu" if sample_rate == 8000 else "audio/pcm"


class OpenAIRealtimeLLMService(SpeechToSpeechService):
    """OpenAI Realtime speech to speech (see the module docstring).

    1.14 style: ``OpenAIRealtimeLLMService(api_key=..., settings=OpenAIRealtimeLLMService.
    Settings(model="gpt-realtime", system_instruction="...", session_properties=
    SessionProperties(audio=AudioConfiguration(output=AudioOutput(voice="marin")))))``.
    ``base_url`` is the socket's address without ``?model=``; left at OpenAI's,
    ``$CALLPIPE_OPENAI_REALTIME_URL`` replaces it.
    """

    Settings = OpenAIRealtimeLLMSettings
    _settings: OpenAIRealtimeLLMSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str = OPENAI_REALTIME_URL,
        session_properties: SessionProperties | None = None,
        settings: OpenAIRealtimeLLMSettings | None = None,
        start_audio_paused: bool = False,
        start_video_paused: bool = False,
        video_frame_detail: ImageDetail = "auto",
        user_audio_preroll_secs: float | None = None,
        audio_batch_ms: int = 40,
        **kwargs: Any,
    ) -> None:
        properties = session_properties or SessionProperties()
        if settings is not None and isinstance(settings.session_properties, SessionProperties):
            properties = settings.session_properties
        chosen = model
        if settings is not None and isinstance(settings.model, str):
            chosen = settings.model
        chosen = chosen or properties.model or DEFAULT_MODEL
        super().__init__(model=chosen, start_audio_paused=start_audio_paused, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "OPENAI_API_KEY")
        address = defaulted_base_url(base_url, OPENAI_REALTIME_URL_ENV, OPENAI_REALTIME_URL)
        self.base_url = f"{address}?model={chosen}"
        self._settings.apply_update(
            OpenAIRealtimeLLMSettings(
                model=chosen,
                system_instruction=properties.instructions,
                session_properties=properties,
            )
        )
        if settings is not None:  # the rest of the user's settings (not changing theirs)
            rest = dataclasses.replace(settings, session_properties=NOT_GIVEN, model=NOT_GIVEN)
            self._settings.apply_update(rest)
        del start_video_paused, video_frame_detail  # video input: not supported (telephony)
        del user_audio_preroll_secs  # no pre-roll replay in manual mode yet
        self._batch_ms = audio_batch_ms
        self._respond_when_ready = False
        self._conversation_sent = False
        self._response_active = False
        self._response_owed = False
        self._response_id: str | None = None
        self._cancelled: set[str] = set()
        self._tts_started = False
        self._audio: _AudioReply | None = None
        self._cut: _AudioReply | None = None
        self._calls: list[ToolCall] = []
        # Wire formats (decided at start from the pipeline's rates).
        self._in_format = "audio/pcm"
        self._out_format = "audio/pcm"

    # ------------------------------------------------------------------ settings, metadata

    @property
    def session_properties(self) -> SessionProperties:
        props = self._settings.session_properties
        return props if isinstance(props, SessionProperties) else SessionProperties()

    def service_metadata_frame(self) -> LLMServiceMetadataFrame:
        manual = self.session_properties.turn_detection_disabled
        return LLMServiceMetadataFrame(
            service_name=self.name,
            is_realtime_service=True,
            user_turn_strategies=None if manual else ExternalUserTurnStrategies(),
        )

    async def update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        changed = await super().update_settings(delta)
        props = self._settings.session_properties
        if (
            "session_properties" in changed
            and "system_instruction" not in changed
            and isinstance(props, SessionProperties)
            and props.instructions is not None
        ):
            changed["system_instruction"] = self._settings.system_instruction
            self._settings.system_instruction = props.instructions  # the new session's own
        if changed.keys() & {"session_properties", "system_instruction"} and self._session_ready:
            await self._send_session_update()
        return changed

    # ------------------------------------------------------------------ connection

    def _choose_formats(self) -> None:
        audio = self.session_properties.audio or AudioConfiguration()
        given_in = audio.input.format if audio.input is not None else None
        given_out = audio.output.format if audio.output is not None else None
        self._in_format = _format_for(given_in, self._in_sample_rate)
        self._out_format = _format_for(given_out, self._out_sample_rate)
        pcm = self._in_format == "audio/pcm"
        self._caller_audio = CallerAudio(
            in_rate=self._in_sample_rate,
            wire_rate=OPENAI_SAMPLE_RATE if pcm else 8000,
            batch_bytes=int(_BYTES_PER_MS[self._in_format] * self._batch_ms),
            encode=_ENCODERS.get(self._in_format),
        )
        self._bot_audio = BotAudio(self._out_sample_rate)

    async def start(self, frame: StartFrame) -> None:
        self._choose_formats()
        headers = {"Authorization": f"Bearer {self._api_key}"}
        await self._connect(self.base_url, headers, "Check api_key / OPENAI_API_KEY.")

    async def _on_reconnected(self) -> None:
        # A new session: the server knows nothing of the conversation or its calls.
        await super()._on_reconnected()
        self._conversation_sent = False
        self._response_active = False
        self._audio = self._cut = None

    async def send_client_event(self, event: dict[str, Any]) -> bool:
        """Send one client event (a dict with its ``type``); False if the socket is down."""
        return await self._send_json(event)

    def _audio_message(self, data: str) -> str:
        return _APPEND % data

    def _session_body(self) -> dict[str, Any]:
        props = self.session_properties
        instructions = self._settings.system_instruction
        context_tools = None
        if self._context is not None:
            context_tools = _tool_dicts(self._context.tools_for_api())
            if not isinstance(instructions, str):
                for message in self._context.messages_for_api():
                    if message.get("role") == "system":
                        instructions = text_of(message.get("content"))
                        break
        formats: dict[str, AudioFormat] = {
            "audio/pcm": PCMAudioFormat(),
            "audio/pcmu": PCMUAudioFormat(),
            "audio/pcma": PCMAAudioFormat(),
        }
        audio = (props.audio or AudioConfiguration()).model_copy(deep=True)
        audio.input = audio.input or AudioInput()
        audio.output = audio.output or AudioOutput()
        audio.input.format = audio.input.format or formats[self._in_format]
        audio.output.format = audio.output.format or formats[self._out_format]
        sent = props.model_copy(update={"audio": audio, "model": None})
        if isinstance(instructions, str):
            sent.instructions = instructions
        return sent.to_wire(context_tools or _tool_dicts(props.tools))

    async def _send_session_update(self) -> None:
        await self.send_client_event({"type": "session.update", "session": self._session_body()})

    # ------------------------------------------------------------------ frames in

    async def _on_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            await self._on_interruption()
        elif isinstance(frame, BotInterruptedFrame) and direction == FrameDirection.UPSTREAM:
            await self._truncate(frame.heard_secs)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            if not self._response_active:
                self._audio = None  # played out: nothing left to truncate
        elif isinstance(frame, UserStoppedSpeakingFrame):
            if self.session_properties.turn_detection_disabled and self._session_ready:
                await self._flush_audio()
                await self.send_client_event({"type": "input_audio_buffer.commit"})
                await self._create_response()

    async def _on_context(self, context: ChatContext) -> None:
        first = self._context is None
        self._context = context
        if first:
            # Results already in the context were answered before this session.
            self._sent_results.update(answered_call_ids(context))
            await self._create_response()

    async def _on_interruption(self) -> None:
        if self._response_active and self._response_id is not None:
            self._cancelled.add(self._response_id)
            await self.send_client_event({"type": "response.cancel"})
        self._response_owed = False
        if self._audio is not None:
            self._cut, self._audio = self._audio, None
        self._bot_audio.reset()
        await self._end_response_frames()

    async def _truncate(self, heard_secs: float) -> None:
        cut, self._cut = self._cut, None
        if cut is None:
            return
        audio_end_ms = max(0, min(int(heard_secs * 1000), int(cut.received_ms)))
        await self.send_client_event(
            {
                "type": "conversation.item.truncate",
                "item_id": cut.item_id,
                "content_index": cut.content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    # ------------------------------------------------------------------ responses

    async def _create_response(self) -> None:
        if not self._session_ready:
            self._respond_when_ready = True
            return
        if self._response_active:
            self._response_owed = True  # the API refuses a second one while one runs
            return
        # The context's instructions, tools and messages, before its first response.
        await self._send_context_once()
        self._response_active = True
        self.start_ttfb_metrics()
        await self.send_client_event({"type": "response.create"})

    async def _send_context_once(self) -> None:
        """The context's instructions and tools (a session update) and its messages, once
        per session."""
        if self._conversation_sent or self._context is None:
            return
        self._conversation_sent = True
        await self._send_session_update()
        await self._send_conversation()

    async def _send_conversation(self) -> None:
        """The context's messages as conversation items (the first system one is the
        session's instructions)."""
        if self._context is None:
            return
        skipped_system = False
        for message in self._context.messages_for_api():
            role = message.get("role")
            text = text_of(message.get("content"))
            if role not in ("system", "user", "assistant") or not text:
                continue
            if role == "system" and not skipped_system:
                skipped_system = True
                continue
            kind = "output_text" if role == "assistant" else "input_text"
            item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
            await self.send_client_event({"type": "conversation.item.create", "item": item})

    async def _end_response_frames(self) -> None:
        if self._tts_started:
            self._tts_started = False
            await self.push_frame(TTSStoppedFrame())
        if self._responding:
            self._responding = False
            await self.push_frame(LLMFullResponseEndFrame())
        self._release_end()

    # ------------------------------------------------------------------ server events

    async def _on_server_message(self, event: dict[str, Any]) -> None:
        handler = self._handlers.get(str(event.get("type")))
        if handler is not None:
            await handler(self, event)

    async def _on_session_created(self, event: dict[str, Any]) -> None:
        await self._send_session_update()

    async def _on_session_updated(self, event: dict[str, Any]) -> None:
        self._session_ready = True
        if self._respond_when_ready:
            self._respond_when_ready = False
            await self._create_response()
        else:
            # A new session after a reconnect: give it the conversation so far (no response:
            # the caller's next turn asks for one).
            await self._send_context_once()

    async def _on_response_created(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self._response_id = response.get("id")
        self._response_active = True
        if self._cut is not None:
            await self._truncate(0.0)  # cut before any of it was played
        self._calls = []
        self._responding = True
        await self.push_frame(LLMFullResponseStartFrame())

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        if event.get("response_id") in self._cancelled:
            return  # in flight when we cancelled it
        raw = base64.b64decode(event.get("delta") or "")
        audio = self._audio
        item_id = str(event.get("item_id"))
        if audio is None or audio.item_id != item_id:
            audio = self._audio = _AudioReply(item_id, int(event.get("content_index") or 0))
        audio.received_ms += len(raw) / _BYTES_PER_MS[self._out_format]
        if not self._tts_started:
            self._tts_started = True
            await self.stop_ttfb_metrics()
            await self.push_frame(TTSStartedFrame())
        if self._out_format == "audio/pcmu":
            pcm, rate = ulaw_to_pcm(raw), 8000
        elif self._out_format == "audio/pcma":
            pcm, rate = alaw_to_pcm(raw), 8000
        else:
            await self._push_bot_audio(raw, OPENAI_SAMPLE_RATE)
            return
        if pcm:
            await self.push_frame(TTSAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1))

    async def _on_transcript_delta(self, event: dict[str, Any]) -> None:
        if event.get("response_id") in self._cancelled:
            return
        text = str(event.get("delta") or "")
        if text:
            await self._push_spoken_text(text)

    async def _on_text_delta(self, event: dict[str, Any]) -> None:
        if event.get("response_id") not in self._cancelled and event.get("delta"):
            await self.push_frame(LLMTextFrame(str(event["delta"])))

    async def _on_function_call(self, event: dict[str, Any]) -> None:
        self._calls.append(
            ToolCall(
                id=str(event.get("call_id")),
                name=str(event.get("name")),
                arguments=str(event.get("arguments") or ""),
            )
        )

    async def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        response_id = response.get("id")
        self._response_active = False
        if response_id in self._cancelled:
            self._cancelled.discard(response_id)
        else:
            await self._push_bot_audio_tail()
            await self._end_response_frames()
        if response.get("status") == "failed":
            details = response.get("status_details") or {}
            error = details.get("error") or {}
            await self.report_error(
                f"{self}: response failed: {error.get('message') or error or 'no reason given'}"
            )
        calls, self._calls = self._calls, []
        if calls:
            self.create_task(self._run_calls(calls), "realtime-function-calls")
        elif self._response_owed:
            self._response_owed = False
            await self._create_response()

    async def _send_results(self, results: list[tuple[ToolCall, Any]], run_again: bool) -> None:
        for call, content in results:
            item = {
                "type": "function_call_output",
                "call_id": call.id,
                "output": text_of(content) or "COMPLETED",
            }
            await self.send_client_event({"type": "conversation.item.create", "item": item})
        if run_again:
            await self._create_response()

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._response_owed = False
        await self.broadcast_frame(ProposedUserStartedSpeakingFrame)

    async def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        self.start_ttfb_metrics()  # the server answers from here
        await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)

    async def _on_transcription(self, event: dict[str, Any]) -> None:
        transcript = str(event.get("transcript") or "").strip()
        if transcript:
            await self._push_caller_text(transcript, result=event)

    async def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        if code in _QUIET_ERRORS:
            logger.debug("%s: %s", self, message or code)
            return
        await self.report_error(
            f"{self}: OpenAI Realtime error {code or error.get('type')}: {message}",
            fatal=code in _FATAL_ERRORS,
            reason="auth" if code in _FATAL_ERRORS else "error",
        )

    _handlers: dict[str, Any] = {
        "session.created": _on_session_created,
        "session.updated": _on_session_updated,
        "response.created": _on_response_created,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio_transcript.delta": _on_transcript_delta,
        "response.output_text.delta": _on_text_delta,
        "response.function_call_arguments.done": _on_function_call,
        "response.done": _on_response_done,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "conversation.item.input_audio_transcription.completed": _on_transcription,
        "conversation.item.input_audio_transcription.failed": _on_transcription,
        "error": _on_error,
    }
