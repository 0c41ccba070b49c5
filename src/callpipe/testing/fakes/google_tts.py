"""FakeGoogleTTSServer: Google Cloud Text-to-Speech's ``text:synthesize`` on 127.0.0.1.

The documented contract (https://cloud.google.com/text-to-speech/docs/reference/rest/v1/text/synthesize
and the ``google-cloud-texttospeech`` SDK's ``SynthesizeSpeechRequest`` / ``Response``):

- ``POST /v1/text:synthesize`` with a JSON body in the protobuf JSON mapping (camelCase):
  ``{"input": {"text" | "ssml" | "markup": ...}, "voice": {"languageCode", "name",
  "ssmlGender"}, "audioConfig": {"audioEncoding", "sampleRateHertz", "speakingRate", "pitch",
  "volumeGainDb", "effectsProfileId"}}``. ``input`` holds one kind of text, ``languageCode`` and
  ``audioEncoding`` are required, ``speakingRate`` is 0.25 to 2.0, ``pitch`` -20 to 20 semitones,
  ``volumeGainDb`` -96 to 16. SSML must be a well-formed ``<speak>`` document.
- The answer is ``{"audioContent": "<base64>"}``, the whole audio at once (the method is not
  streamed). ``LINEAR16``, ``MULAW`` and ``ALAW`` audio comes inside a WAV file (the header is
  part of ``audioContent``); ``PCM`` is headerless 16-bit. Without ``sampleRateHertz`` the audio
  is at the voice's natural rate (24 kHz here).
- Credentials: an API key in ``X-Goog-Api-Key`` (or ``?key=``), or an OAuth access token in
  ``Authorization: Bearer``. A wrong key gets HTTP 400 ``INVALID_ARGUMENT`` with reason
  ``API_KEY_INVALID`` (Google's answer to a bad key), a wrong token 401 ``UNAUTHENTICATED``, no
  credentials 403 ``PERMISSION_DENIED``. Errors are ``{"error": {"code", "message", "status"}}``.
- ``POST /token`` stands in for Google's OAuth token endpoint (a service account's
  ``token_uri``): a JWT-bearer grant whose assertion carries ``iss``, ``aud``, ``scope``,
  ``iat`` and ``exp`` gets ``{"access_token", "expires_in", "token_type": "Bearer"}``, and the
  token is then accepted. The assertion's signature is not checked.

Voices named ``*Chirp*`` or ``*Journey*`` refuse SSML input, as Google documents for them. The
fake speaks ``secs_per_word`` of tone per word of the text (SSML tags excluded), records every
request's body, headers and query, and answers scripted ``statuses`` (a Google-shaped error for
each non-200) and ``raw_answers`` first.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import struct
import xml.etree.ElementTree as ET
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._google import google_rpc_error
from callpipe.testing.fakes._server import LocalASGIServer, ServedHTTPFake, fake_app
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v1/text:synthesize"
TOKEN_PATH = "/token"
NATURAL_RATE = 24000
SERVED_ENCODINGS = ("LINEAR16", "MULAW", "ALAW", "PCM")
OTHER_ENCODINGS = ("MP3", "OGG_OPUS", "M4A")
INPUT_KINDS = ("text", "ssml", "markup", "multiSpeakerMarkup", "prompt")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def google_error(status: int, message: str, reason: str | None = None) -> JSONResponse:
    """A Google API error body (``google.rpc.Status`` in JSON) with ``status``."""
    return google_rpc_error(status, message, reason, service="texttospeech.googleapis.com")


def wav_file(encoding: str, rate: int, payload: bytes) -> bytes:
    """``payload`` in a mono WAV file: a 16-byte ``fmt`` for PCM; for the G.711 encodings the
    18-byte ``fmt`` and ``fact`` chunk a non-PCM WAV carries, so a reader must walk the chunks."""
    if encoding == "LINEAR16":
        fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
        extra = b""
    else:
        tag = 7 if encoding == "MULAW" else 6
        fmt = struct.pack("<HHIIHHH", tag, 1, rate, rate, 1, 8, 0)
        extra = b"fact" + struct.pack("<II", 4, len(payload))
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def spoken_text(synthesis_input: dict[str, Any]) -> str:
    """The words of a request's ``input`` (SSML without its tags). Raises ValueError for SSML
    that is not a ``<speak>`` document."""
    ssml = synthesis_input.get("ssml")
    if ssml is None:
        return str(synthesis_input.get("text") or synthesis_input.get("markup") or "")
    # Google's SSML has a ``google:`` namespace it never declares; read it as plain names.
    source = str(ssml).replace("<google:", "<google_").replace("</google:", "</google_")
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        raise ValueError(f"Invalid SSML: {exc}") from exc
    if root.tag != "speak":
        raise ValueError("Invalid SSML: the document must be a <speak> element")
    return "".join(root.itertext())


def synthesize_problem(body: Any) -> str | None:
    """Why Google would refuse this ``text:synthesize`` body (None: it would not)."""
    if not isinstance(body, dict):
        return "Invalid JSON payload: the body must be an object"
    known = {"input", "voice", "audioConfig", "advancedVoiceOptions"}
    unknown = sorted(set(body) - known)
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
    synthesis_input, voice, config = body.get("input"), body.get("voice"), body.get("audioConfig")
    if not isinstance(synthesis_input, dict) or not synthesis_input:
        return "Input is required."
    kinds = [k for k in INPUT_KINDS if k in synthesis_input]
    if len(kinds) != 1 or len(synthesis_input) != 1:
        return "Input must hold exactly one of text, ssml, markup or multiSpeakerMarkup."
    if not isinstance(voice, dict) or not voice.get("languageCode"):
        return "Voice language code is required."
    name = str(voice.get("name") or "")
    if "ssml" in synthesis_input and any(k in name.lower() for k in ("chirp", "journey")):
        return f"This voice ({name}) does not support SSML input."
    if not isinstance(config, dict) or not config.get("audioEncoding"):
        return "Audio encoding is required."
    encoding = config["audioEncoding"]
    if encoding not in SERVED_ENCODINGS + OTHER_ENCODINGS:
        return f"Invalid value at 'audio_config.audio_encoding', \"{encoding}\""
    if encoding in OTHER_ENCODINGS:
        return f"this fake makes {', '.join(SERVED_ENCODINGS)} audio only"
    rate = config.get("sampleRateHertz", NATURAL_RATE)
    if not isinstance(rate, int) or not 8000 <= rate <= 48000:
        return "sampleRateHertz must be between 8000 and 48000"
    for field, low, high in (
        ("speakingRate", 0.25, 2.0),
        ("pitch", -20.0, 20.0),
        ("volumeGainDb", -96.0, 16.0),
    ):
        value = config.get(field)
        if value is not None and not low <= float(value) <= high:
            return f"{field} must be between {low} and {high}"
    try:
        spoken_text(synthesis_input)
    except ValueError as exc:
        return str(exc)
    return None


def _claims(assertion: str) -> dict[str, Any] | None:
    """The payload of a JWT (unverified), or None if it is not one."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


class FakeGoogleTTSServer(ServedHTTPFake):
    """See the module docstring. ``async with FakeGoogleTTSServer() as fake: fake.base_url``.

    ``api_key=None`` accepts any request, credentials or not (an SDK client with anonymous
    credentials sends none). ``response_delay``: seconds before each answer (a client that
    hangs up meanwhile is counted in ``cancelled_requests``).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        response_delay: float = 0.0,
        token_lifetime_secs: int = 3600,
    ) -> None:
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.response_delay = response_delay
        self.token_lifetime_secs = token_lifetime_secs
        self.requests: list[dict[str, Any]] = []
        """Each well-formed, authorized request's JSON body."""
        self.headers: list[dict[str, str]] = []
        """Each synthesize request's headers (names in lower case)."""
        self.queries: list[dict[str, list[str]]] = []
        """Each synthesize request's query parameters."""
        self.responses: list[dict[str, Any]] = []
        """Each successful answer's JSON body."""
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next valid requests (200 = speak)."""
        self.raw_answers: deque[bytes] = deque()
        """Bodies for the next valid requests, sent as they are with HTTP 200 (garbage)."""
        self.token_claims: list[dict[str, Any]] = []
        """The claims of each JWT-bearer assertion exchanged at ``/token``."""
        self.cancelled_requests = 0
        self._tokens: set[str] = set()
        self._token_ids = itertools.count(1)
        self._server = LocalASGIServer(
            fake_app(
                [
                    Route(PATH, self._synthesize, methods=["POST"]),
                    Route(TOKEN_PATH, self._token, methods=["POST"]),
                ]
            )
        )

    @property
    def host(self) -> str:
        """``127.0.0.1:port``: an SDK's ``api_endpoint``."""
        return f"127.0.0.1:{self._server.port}"

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint to put in a service account's ``token_uri``."""
        return self.base_url + TOKEN_PATH

    def _denied(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key is not None:
            if key == self.api_key:
                return None
            return google_error(
                400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            if token in self._tokens:
                return None
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            )
        return google_error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )

    async def _wait(self, request: Request) -> bool:
        """Sit out ``response_delay``; False if the client hung up meanwhile."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.response_delay
        while loop.time() < until:
            if await request.is_disconnected():
                self.cancelled_requests += 1
                return False
            await asyncio.sleep(0.01)
        return True

    async def _synthesize(self, request: Request) -> Response:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.queries.append(parse_qs(request.url.query))
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.body())
        except ValueError:
            return google_error(400, "Invalid JSON payload received.")
        problem = synthesize_problem(body)
        if problem is not None:
            return google_error(400, problem)
        self.requests.append(body)
        status = self.statuses.popleft() if self.statuses else 200
        if not await self._wait(request):
            return Response(status_code=499)
        if status != 200:
            return google_error(status, f"scripted HTTP {status}")
        if self.raw_answers:
            return Response(self.raw_answers.popleft(), media_type="application/json")
        config = body["audioConfig"]
        encoding = str(config["audioEncoding"])
        rate = int(config.get("sampleRateHertz", NATURAL_RATE))
        words = max(1, len(spoken_text(body["input"]).split()))
        pcm = tone_pcm(words * self.secs_per_word, rate)
        if encoding == "PCM":
            audio = pcm
        elif encoding == "LINEAR16":
            audio = wav_file(encoding, rate, pcm)
        else:
            codec = pcm_to_ulaw if encoding == "MULAW" else pcm_to_alaw
            audio = wav_file(encoding, rate, codec(pcm))
        answer = {"audioContent": base64.b64encode(audio).decode()}
        self.responses.append(answer)
        return JSONResponse(answer)

    async def _token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if form.get("grant_type") != [JWT_GRANT] or not form.get("assertion"):
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
                status_code=400,
            )
        claims = _claims(form["assertion"][0])
        required = ("iss", "aud", "scope", "iat", "exp")
        if claims is None or any(name not in claims for name in required):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status_code=400,
            )
        self.token_claims.append(claims)
        token = f"fake-access-token-{next(self._token_ids)}"
        self._tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": self.token_lifetime_secs,
                "token_type": "Bearer",
            }
        )
