"""UltravoxRealtimeLLMService: speech to speech with Ultravox Realtime over a server WebSocket.

**The call.** At start the service creates an Ultravox call over HTTP with ``X-API-Key``:
``POST /api/calls`` (:class:`OneShotInputParams`: system prompt, model, voice, temperature,
``selectedTools``, ...) or ``POST /api/agents/{agent_id}/calls`` (:class:`AgentInputParams`:
a call of an agent configured at Ultravox), each with ``medium.serverWebSocket``
(``inputSampleRate`` / ``outputSampleRate``); the answer's ``joinUrl`` is the socket to join.
:class:`JoinUrlInputParams` joins a call created elsewhere. ``$CALLPIPE_ULTRAVOX_URL``
replaces the API's origin (``callpipe fakes`` sets it).

**Audio.** Both directions are binary messages of 16-bit little-endian mono PCM. The call is
created at the pipeline's own rates (8 kHz on a phone line), so no audio is resampled here. The
caller's audio goes out in messages of ``audio_batch_ms`` (40 ms: two 20 ms packets).

**Frames out.** A reply: ``LLMFullResponseStartFrame`` and ``TTSStartedFrame`` at its first
audio, the audio as ``TTSAudioRawFrame``\\ s, the agent's transcript deltas as ``LLMTextFrame``
(``append_to_context=False``) plus ``TTSTextFrame`` (what the assistant aggregator records once
played), then ``TTSStoppedFrame`` and ``LLMFullResponseEndFrame`` when Ultravox's ``state``
leaves ``speaking``. With the text output medium the agent's deltas are ``LLMTextFrame``\\ s
for the context. The caller's final transcripts go upstream as ``TranscriptionFrame``\\ s.

**Turns and barge-in.** Ultravox detects the caller's turns itself and emits no speech start or
stop (like Pipecat's, this service offers no turn strategies). ``playback_clear_buffer`` (the
caller spoke over the agent) becomes an interruption broadcast both ways: the output transport
drops the unplayed audio and the assistant aggregator keeps only the words heard. An
``EndFrame`` that comes while the agent speaks waits for the end of the reply (30 s at most).

**Function calls.** ``client_tool_invocation`` runs the registered handler (``register_function``;
tools for a one-shot call come from ``one_shot_selected_tools`` and are declared as client
tools); the result goes back as ``client_tool_result`` (``agentReaction: "listens"`` when the
result asked not to run the model again).

**Other input.** An ``InputTextRawFrame`` is sent as ``user_text_message``; a settings update of
``output_medium`` (``"voice"`` / ``"text"``) as ``set_output_medium``.

**Errors.** A refused key when creating the call is fatal (``ServiceAuthError``); another
refusal is a ``HandshakeError``. A dropped socket is joined again at the same URL; a call that
closed normally and cannot be joined again (Ultravox ended it) is logged, not an error.

Not done: Pipecat's async-tool placeholders (a result is sent when the handler gives it),
``forced_agent_message``, ``ping``; direct functions in ``one_shot_selected_tools``.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.errors import ServiceAuthError
from callpipe.frames.frames import (
    Frame,
    InputTextRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    StartFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services._env import ULTRAVOX_URL_ENV, base_url
from callpipe.services._http import error_message, is_retryable
from callpipe.services._speech_to_speech import BotAudio, SpeechToSpeechService, answered_call_ids
from callpipe.services._speech_to_speech import text_of as _text_of
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.llm_service import ToolCall
from callpipe.services.settings import LLMSettings, unset
from callpipe.services.websocket_service import HandshakeError, Message
from callpipe.utils.http_pool import pooled_transport
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

ULTRAVOX_API_URL = "https://api.ultravox.ai"
CALLS_PATH = "/api/calls"
AGENT_CALLS_PATH = "/api/agents/{agent_id}/calls"
_AUTH_HINT = "Check the params' api_key / ULTRAVOX_API_KEY."
_MEDIUMS = {"text": "MESSAGE_MEDIUM_TEXT", "voice": "MESSAGE_MEDIUM_VOICE"}


@dataclass
class UltravoxRealtimeLLMSettings(LLMSettings):
    """``UltravoxRealtimeLLMService.Settings``: the LLM settings plus ``output_medium``
    (``"voice"`` or ``"text"``; an update is sent to the call as ``set_output_medium``)."""

    output_medium: str | None | NotGiven = field(default_factory=unset)


def _duration(value: datetime.timedelta) -> str:
    return f"{value.total_seconds():g}s"


class AgentInputParams(BaseModel):
    """A call of an agent configured at Ultravox (``POST /api/agents/{agent_id}/calls``).

    ``template_context`` fills the agent's template variables; ``extra`` is merged into the
    request body last (any field of Ultravox's agent-call request)."""

    api_key: str | None = None
    agent_id: uuid.UUID
    template_context: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    output_medium: Literal["text", "voice"] | None = None
    max_duration: datetime.timedelta | None = Field(
        default=None, ge=datetime.timedelta(seconds=10), le=datetime.timedelta(hours=1)
    )
    extra: dict[str, Any] = Field(default_factory=dict)


class OneShotInputParams(BaseModel):
    """A call configured here (``POST /api/calls``). ``None`` leaves a field to Ultravox;
    ``extra`` is merged into the request body last (any field of Ultravox's call request)."""

    api_key: str | None = None
    system_prompt: str | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    model: str | None = None
    voice: uuid.UUID | str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    output_medium: Literal["text", "voice"] | None = None
    max_duration: datetime.timedelta = Field(
        default=datetime.timedelta(hours=1),
        ge=datetime.timedelta(seconds=10),
        le=datetime.timedelta(hours=1),
    )
    extra: dict[str, Any] = Field(default_factory=dict)


class JoinUrlInputParams(BaseModel):
    """Join a call already created (with a ``serverWebSocket`` medium) at its ``joinUrl``."""

    join_url: str


def client_tool(tool: FunctionSchema) -> dict[str, Any]:
    """``tool`` as a temporary client tool of Ultravox's ``selectedTools``."""
    parameters = [
        {
            "name": name,
            "location": "PARAMETER_LOCATION_BODY",
            "schema": schema,
            "required": name in tool.required,
        }
        for name, schema in tool.properties.items()
    ]
    return {
        "temporaryTool": {
            "modelToolName": tool.name,
            "description": tool.description,
            "dynamicParameters": parameters,
            "client": {},
        }
    }


class UltravoxRealtimeLLMService(SpeechToSpeechService):
    """Ultravox Realtime speech to speech (see the module docstring).

    1.14 style: ``UltravoxRealtimeLLMService(params=OneShotInputParams(api_key=...,
    system_prompt="...", voice="Mark"), one_shot_selected_tools=ToolsSchema(...))``.
    """

    Settings = UltravoxRealtimeLLMSettings
    _settings: UltravoxRealtimeLLMSettings

    def __init__(
        self,
        *,
        params: AgentInputParams | OneShotInputParams | JoinUrlInputParams,
        settings: UltravoxRealtimeLLMSettings | None = None,
        one_shot_selected_tools: ToolsSchema | list[FunctionSchema] | None = None,
        start_audio_paused: bool = False,
        audio_batch_ms: int = 40,
        **kwargs: Any,
    ) -> None:
        super().__init__(start_audio_paused=start_audio_paused, **kwargs)
        if settings is not None:
            self._settings.apply_update(settings)
        self._params = params
        self._api_key = ""
        if not isinstance(params, JoinUrlInputParams):
            self._api_key = resolve_api_key(type(self).__name__, params.api_key, "ULTRAVOX_API_KEY")
        self._api_url = base_url(None, ULTRAVOX_URL_ENV, ULTRAVOX_API_URL)
        tools = one_shot_selected_tools
        if isinstance(tools, ToolsSchema):
            tools = [t for t in tools.standard_tools if isinstance(t, FunctionSchema)]
        self._tools: list[FunctionSchema] = list(tools or [])
        if self._tools and not isinstance(params, OneShotInputParams):
            logger.warning("%s: one_shot_selected_tools needs OneShotInputParams; ignored", self)
            self._tools = []
        for tool in self._tools:
            if tool.handler is not None and not self.has_function(tool.name):
                self.register_function(tool.name, tool.handler)
        self._batch_ms = audio_batch_ms
        self._batch = bytearray()
        self._batch_bytes = 0
        self._out_rate = 0
        self._tts_started = False
        self._said = ""
        """The agent's words of the current utterance pushed so far."""
        self.call_id: str | None = None
        """The call's id (from the create-call answer or ``call_started``)."""
        self.join_url: str | None = None

    # ------------------------------------------------------------------ metadata, settings

    def service_metadata_frame(self) -> LLMServiceMetadataFrame:
        # Ultravox reports no start or end of the caller's speech: no turn strategies to offer.
        return LLMServiceMetadataFrame(service_name=self.name, is_realtime_service=True)

    async def update_settings(self, delta: LLMSettings) -> dict[str, Any]:
        changed = await super().update_settings(delta)
        if "output_medium" in changed:
            await self._send_output_medium(self._settings.output_medium)
        return changed

    async def _send_output_medium(self, medium: Any) -> None:
        value = str(medium or "").lower()
        value = "voice" if value == "audio" else value
        if value not in _MEDIUMS:
            logger.warning("%s: unsupported output medium %r", self, medium)
            return
        await self._send_json({"type": "set_output_medium", "medium": value})

    # ------------------------------------------------------------------ the call

    def call_request(self) -> tuple[str, dict[str, Any]]:
        """The create-call request: its URL and JSON body (not for :class:`JoinUrlInputParams`)."""
        params = self._params
        medium = {
            "serverWebSocket": {
                "inputSampleRate": self._in_sample_rate,
                "outputSampleRate": self._out_sample_rate,
            }
        }
        body: dict[str, Any]
        if isinstance(params, AgentInputParams):
            url = self._api_url + AGENT_CALLS_PATH.format(agent_id=params.agent_id)
            body = {"templateContext": params.template_context, "metadata": params.metadata}
            if params.max_duration is not None:
                body["maxDuration"] = _duration(params.max_duration)
        elif isinstance(params, OneShotInputParams):
            url = self._api_url + CALLS_PATH
            prompt = params.system_prompt
            if prompt is None and isinstance(self._settings.system_instruction, str):
                prompt = self._settings.system_instruction
            body = {
                "systemPrompt": prompt,
                "temperature": params.temperature,
                "model": params.model,
                "voice": str(params.voice) if params.voice is not None else None,
                "metadata": params.metadata,
                "maxDuration": _duration(params.max_duration),
                "selectedTools": [client_tool(t) for t in self._tools],
            }
            body = {k: v for k, v in body.items() if v is not None}
        else:
            raise TypeError("a JoinUrlInputParams call is not created here")
        body["medium"] = medium
        initial = _MEDIUMS.get(params.output_medium or "")
        if initial is not None:
            body["initialOutputMedium"] = initial
        return url, body | params.extra

    async def _create_call(self) -> str:
        """Create the call; its ``joinUrl``. A network error, 429 or 5xx is tried once more."""
        url, body = self.call_request()
        headers = {"X-API-Key": self._api_key}
        response: httpx.Response | None = None
        async with httpx.AsyncClient(
            transport=pooled_transport(), timeout=httpx.Timeout(10.0, connect=5.0)
        ) as client:
            for attempt in range(2):
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    if attempt == 0:
                        continue
                    raise ConnectionError(
                        f"{self}: creating the Ultravox call failed: {type(exc).__name__}: {exc}"
                    ) from None
                if response.status_code in (200, 201) or not is_retryable(response.status_code):
                    break
        assert response is not None
        status = response.status_code
        if status not in (200, 201):
            reason = error_message(status, response.content)
            if status in (401, 403):
                raise ServiceAuthError(
                    f"{self}: Ultravox rejected the key (HTTP {status}: {reason}). {_AUTH_HINT}"
                )
            raise HandshakeError(
                f"{self}: Ultravox refused the call (HTTP {status}: {reason})",
                status=status,
                reason=reason,
                retryable=is_retryable(status),
            )
        answer = response.json()
        self.call_id = str(answer.get("callId") or "") or None
        return str(answer["joinUrl"])

    async def start(self, frame: StartFrame) -> None:
        self._out_rate = self._out_sample_rate
        self._bot_audio = BotAudio(self._out_sample_rate)
        self._batch_bytes = max(2, self._in_sample_rate * self._batch_ms // 1000 * 2)
        if isinstance(self._params, JoinUrlInputParams):
            join_url = self._params.join_url
        else:
            join_url = await self._create_call()
        self.join_url = join_url
        await self._connect(join_url, {}, _AUTH_HINT)
        self._session_ready = True

    async def _on_reconnected(self) -> None:
        # The call lives at Ultravox: the socket joined again goes on with it.
        await self._end_response()
        self._batch.clear()

    async def _on_socket_failed(self, message: str) -> None:
        ws = self._ws
        code = ws.last_close[0] if ws is not None and ws.last_close is not None else None
        if code == 1000:
            # Ultravox ended the call (the agent hung up, or its time ran out): no error.
            self._session_ready = False
            logger.info("%s: Ultravox ended the call", self)
            await self._end_response()
            return
        await super()._on_socket_failed(message)

    # ------------------------------------------------------------------ frames in

    async def _send_audio(self, pcm: bytes) -> None:
        batch = self._batch
        batch += pcm
        if len(batch) >= self._batch_bytes:
            data = bytes(batch)
            batch.clear()
            await self._send_bytes(data)

    async def _flush_audio(self) -> None:
        if self._batch:
            data = bytes(self._batch)
            self._batch.clear()
            await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> None:
        ws = self._ws
        if ws is not None:
            await ws.send(data, wait_secs=0)

    async def _on_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputTextRawFrame) and frame.text:
            await self.send_user_text(frame.text)

    async def send_user_text(self, text: str, *, urgency: str | None = None) -> bool:
        """Send ``text`` as the caller's (``user_text_message``); False if the socket is down."""
        message: dict[str, Any] = {"type": "user_text_message", "text": text}
        if urgency is not None:
            message["urgency"] = urgency
        return await self._send_json(message)

    async def _on_context(self, context: ChatContext) -> None:
        # Ultravox keeps the conversation itself: the context only serves the function calls.
        if self._context is None:
            self._sent_results.update(answered_call_ids(context))
        self._context = context

    # ------------------------------------------------------------------ server messages

    async def _on_message(self, message: Message) -> None:
        if isinstance(message, bytes):
            await self._on_audio(message)
        else:
            await super()._on_message(message)

    async def _on_server_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "transcript":
            await self._on_transcript(message)
        elif kind == "state":
            state = message.get("state")
            if state == "thinking":
                self.start_ttfb_metrics()
            elif state != "speaking" and self._responding:
                await self._push_bot_audio_tail()
                await self._end_response()
        elif kind == "playback_clear_buffer":
            self._bot_audio.reset()
            await self.broadcast_interruption()
            await self._end_response()
        elif kind == "client_tool_invocation":
            call = ToolCall(
                id=str(message.get("invocationId")),
                name=str(message.get("toolName")),
                arguments=json.dumps(message.get("parameters") or {}),
            )
            self.create_task(self._run_calls([call]), "ultravox-function-call")
        elif kind == "call_started":
            self.call_id = str(message.get("callId") or "") or self.call_id
        else:
            logger.debug("%s: %s message", self, kind)

    async def _begin_response(self, *, voice: bool) -> None:
        if not self._responding:
            self._responding = True
            await self.stop_ttfb_metrics()
            await self.push_frame(LLMFullResponseStartFrame())
        if voice and not self._tts_started:
            self._tts_started = True
            await self.push_frame(TTSStartedFrame())

    async def _end_response(self) -> None:
        if self._tts_started:
            self._tts_started = False
            await self.push_frame(TTSStoppedFrame())
        if self._responding:
            self._responding = False
            await self.push_frame(LLMFullResponseEndFrame())
        self._release_end()

    async def _on_audio(self, pcm: bytes) -> None:
        if not pcm:
            return
        await self._begin_response(voice=True)
        await self._push_bot_audio(pcm, self._out_rate)

    async def _on_transcript(self, message: dict[str, Any]) -> None:
        role, final = message.get("role"), bool(message.get("final"))
        text, delta = message.get("text"), message.get("delta")
        if role == "user":
            if final and isinstance(text, str) and text.strip():
                await self._push_caller_text(text.strip(), result=message)
            return
        if role != "agent":
            return
        if message.get("medium") == "text":
            if isinstance(delta, str) and delta:
                await self._begin_response(voice=False)
                await self.push_llm_text(delta)
            elif isinstance(text, str) and text and not final:
                await self._begin_response(voice=False)
                await self.push_llm_text(text)
            if final:
                await self._end_response()
            return
        # Voice: each piece once (a final ``text`` repeats the deltas already pushed).
        piece = delta if isinstance(delta, str) else ""
        if not piece and isinstance(text, str) and text.startswith(self._said):
            piece = text[len(self._said) :]
        if piece:
            self._said += piece
            await self._begin_response(voice=True)
            await self._push_spoken_text(piece)
        if final:
            self._said = ""

    # ------------------------------------------------------------------ function calls

    async def _send_results(self, results: list[tuple[ToolCall, Any]], run_again: bool) -> None:
        for call, content in results:
            message: dict[str, Any] = {
                "type": "client_tool_result",
                "invocationId": call.id,
                "result": _text_of(content) or "COMPLETED",
            }
            if not run_again:
                message["agentReaction"] = "listens"
            await self._send_json(message)
