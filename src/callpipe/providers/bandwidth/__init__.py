"""Bandwidth: BXML ``<StartStream mode="bidirectional">`` answers, HTTP Basic callbacks.

The voice application's *call initiated* webhook (and a dialed call's ``answer`` webhook) is a
JSON POST (``eventType``, ``accountId``, ``applicationId``, ``callId``, ``from``, ``to``, ...).
The runner answers with BXML::

    <StartStream name="callpipe" mode="bidirectional" tracks="inbound" destination="wss://…/ws/TOKEN">
      <StreamParam name="from_number" …/><StreamParam name="to_number" …/>
    </StartStream>
    <StopStream name="callpipe" wait="true"/>
    <Hangup/>

``<StartStream>`` does not block, so ``<StopStream wait="true"/>`` holds the call while the
stream is open; when the bot closes the stream, execution resumes and ``<Hangup/>`` ends the call
(no REST credentials needed for that). The stream's ``start`` repeats the webhook's ``callId``, so
the stream token is bound to the call; the caller's numbers come back in ``streamParams``.

Webhooks are authenticated with the application's callback credentials (HTTP Basic, challenged
first: :mod:`callpipe.providers.bandwidth.auth`). Call control and dialing use the Voice API v2
with API credentials (OAuth 2.0 client id and secret): :mod:`callpipe.telephony.bandwidth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from callpipe.providers.bandwidth.auth import AUTH_ENV, AUTH_HEADER, CHALLENGE, BandwidthVerifier
from callpipe.providers.bandwidth.dial import BANDWIDTH_DIALER
from callpipe.providers.bandwidth.dialect import BandwidthDialect
from callpipe.providers.base import (
    XML_DECL,
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    as_dict,
    env_value,
    numbers,
)
from callpipe.telephony.bandwidth import STREAM_NAME, is_safe_id

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

MAX_STREAM_PARAMS = 12
"""``<StartStream>`` takes at most 12 ``<StreamParam>``s."""
_ANSWER_EVENTS = ("initiate", "answer")
_MAX_ID = 128


class BandwidthCallData(CallData):
    """Bandwidth adds its account id and the stream's name and media format (``start``)."""

    account_id: str | None = None
    stream_name: str | None = None
    tracks: list[str] = []
    encoding: str = "audio/PCMU"
    sample_rate: int = 8000


def _text(value: Any, limit: int = _MAX_ID) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _stream_params(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in list(as_dict(value).items())[:MAX_STREAM_PARAMS]:
        if isinstance(key, str) and isinstance(item, str | int | float | bool):
            out[key[:256]] = str(item)[:2048]
    return out


def _tracks(value: Any) -> tuple[list[str], str, int]:
    """Track names, and the inbound track's encoding and rate (Bandwidth's defaults if absent)."""
    names: list[str] = []
    encoding, rate = "audio/PCMU", 8000
    for track in value[:4] if isinstance(value, list) else []:
        track = as_dict(track)
        name = _text(track.get("name"), 16)
        if name is None:
            continue
        names.append(name)
        media = as_dict(track.get("mediaFormat"))
        if name == "inbound":
            encoding = _text(media.get("encoding"), 32) or encoding
            found = media.get("sampleRate")
            rate = found if isinstance(found, int) and 8000 <= found <= 48000 else rate
    return names, encoding, rate


def start_stream(url: str, parameters: Mapping[str, str]) -> str:
    """The BXML that streams the call to ``url`` and ends it when the stream closes."""
    name = quoteattr(STREAM_NAME)
    params = "".join(
        f"\n    <StreamParam name={quoteattr(k)} value={quoteattr(v)}/>"
        for k, v in list(parameters.items())[:MAX_STREAM_PARAMS]
        if v
    )
    close = "\n  </StartStream>" if params else "</StartStream>"
    return (
        f"{XML_DECL}<Response>\n"
        f'  <StartStream name={name} mode="bidirectional" tracks="inbound" '
        f"destination={quoteattr(url)}>{params}{close}\n"
        f'  <StopStream name={name} wait="true"/>\n'
        "  <Hangup/>\n</Response>"
    )


class BandwidthProvider(BaseProvider):
    name = "bandwidth"
    signature_headers = (AUTH_HEADER,)
    webhook_secret_env = (AUTH_ENV,)
    binds_call_id = True
    auth_challenge = CHALLENGE
    detect_rank = 40  # an Authorization header says little: signing providers first
    setup_hint = "Bandwidth voice application > Call initiated callback URL (POST)"
    dialect = BandwidthDialect
    dialer = BANDWIDTH_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> BandwidthVerifier | None:
        value = secrets.get(AUTH_ENV)
        verifier = BandwidthVerifier(value) if value else None
        return verifier if verifier is not None and verifier.configured else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return (
            fields.get("eventType") in _ANSWER_EVENTS
            and is_safe_id(fields.get("callId"))
            and "accountId" in fields
        )

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        call_id = fields.get("callId", "")
        return call_id if is_safe_id(call_id) else ""

    def answer(self, request: AnswerRequest) -> Answer:
        parameters = {"from_number": request.from_number, "to_number": request.to_number}
        return Answer(start_stream(request.url, parameters), "application/xml")

    def busy(self, reason: str) -> Answer:
        # <Hangup/> rejects an incoming call that is not answered yet (not charged).
        return Answer(f"{XML_DECL}<Response>\n  <Hangup/>\n</Response>", "application/xml")

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        if message.get("eventType") != "start":
            return None
        metadata = as_dict(message.get("metadata"))
        call_id, stream_id = metadata.get("callId"), _text(metadata.get("streamId"))
        if not is_safe_id(call_id) or stream_id is None:
            return None
        account_id = metadata.get("accountId")
        names, encoding, rate = _tracks(metadata.get("tracks"))
        params = _stream_params(message.get("streamParams"))
        return BandwidthCallData(
            stream_id=stream_id,
            call_id=call_id,
            account_id=account_id if is_safe_id(account_id) else None,
            stream_name=_text(metadata.get("streamName")),
            tracks=names,
            encoding=encoding,
            sample_rate=rate,
            body=params,
            **numbers(params.get("from_number"), params.get("to_number")),
        )

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.bandwidth import BandwidthFrameSerializer

        account = env_value(env, "BANDWIDTH_ACCOUNT_ID") or call_data.get("account_id")
        client_id = env_value(env, "BANDWIDTH_CLIENT_ID")
        secret = env_value(env, "BANDWIDTH_CLIENT_SECRET")
        username = env_value(env, "BANDWIDTH_USERNAME")
        password = env_value(env, "BANDWIDTH_PASSWORD")
        has_auth = bool((client_id and secret) or (username and password))
        rate = int(call_data.get("sample_rate", 8000))
        params = no_hang_up(
            BandwidthFrameSerializer,
            bool(call_data.call_id and account and has_auth),
            "BANDWIDTH_CLIENT_ID/CLIENT_SECRET",
        )
        if rate != 8000:
            base = params or BandwidthFrameSerializer.InputParams()
            params = base.model_copy(update={"bandwidth_sample_rate": rate})
        return BandwidthFrameSerializer(
            call_data.stream_id or "",
            call_data.call_id,
            account_id=account,
            client_id=client_id,
            client_secret=secret,
            params=params,
            username=username,
            password=password,
        )


BANDWIDTH = BandwidthProvider()
