"""FakeAWSPollyServer: Amazon Polly's ``SynthesizeSpeech`` (``POST /v1/speech``) on 127.0.0.1.

The documented contract (https://docs.aws.amazon.com/polly/latest/dg/API_SynthesizeSpeech.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html and
the ``polly`` model botocore ships):

- **Signature.** Every request is signed with SigV4: an ``Authorization: AWS4-HMAC-SHA256
  Credential=<key id>/<date>/<region>/polly/aws4_request, SignedHeaders=..., Signature=...``
  header and ``X-Amz-Date``. The fake recomputes the signature with botocore from the secret it
  knows (``secret_key``; None: any well-formed signature of any key passes). No signature:
  403 ``MissingAuthenticationTokenException``; an unknown key id: 403
  ``UnrecognizedClientException``; a wrong signature or scope: 403 ``InvalidSignatureException``.
- **Body.** JSON: ``Text``, ``VoiceId`` and ``OutputFormat`` required; ``TextType`` (``text`` or
  ``ssml``), ``Engine``, ``SampleRate`` (a string; ``pcm`` takes ``"8000"`` and ``"16000"``, the
  default), ``LexiconNames``, ``LanguageCode``. Bad values: 400 ``ValidationException``, a bad
  rate ``InvalidSampleRateException``, SSML that does not parse (or is not a ``<speak>``)
  ``InvalidSsmlException``, more than 3000 billed characters ``TextLengthExceededException``.
- **Answer.** 200 with the audio as the body (``Content-Type: audio/pcm``, 16-bit mono) and
  ``x-amzn-RequestCharacters``. Errors are AWS's JSON shape: ``{"message"}`` with the code in
  the ``x-amzn-ErrorType`` header (and ``__type`` in the body).

The fake serves ``pcm`` only (a ``mp3`` request gets a ``ValidationException`` saying so) and
speaks a tone of ``secs_per_word`` per word of the text (SSML tags left out).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v1/speech"
FAKE_ACCESS_KEY_ID = "AKIAFAKECALLPIPE0000"
"""The key id the fake knows (``callpipe fakes`` prints it as ``AWS_ACCESS_KEY_ID``)."""
ENGINES = ("standard", "neural", "long-form", "generative")
OUTPUT_FORMATS = ("json", "mp3", "ogg_opus", "ogg_vorbis", "pcm", "mulaw", "alaw")
PCM_RATES = ("8000", "16000")
MAX_CHARACTERS = 3000

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_SCRIPTED_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    429: "ThrottlingException",  # Polly itself throttles with a 400 (see ``throttle``)
    500: "ServiceFailureException",
    503: "ServiceUnavailableException",
}


def aws_error(status: int, code: str, message: str) -> Any:
    """An error answer in the shape AWS's REST JSON services give."""
    from starlette.responses import JSONResponse

    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return JSONResponse({"__type": code, "message": message}, status, headers=headers)


class FakeAWSPollyServer(SpeechHTTPFake):
    """Polly's ``POST /v1/speech`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        secret_key: str | None = "test-secret",
        access_key_id: str = FAKE_ACCESS_KEY_ID,
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(PATH, self._speak, api_key=secret_key, secs_per_word=secs_per_word)
        self.access_key_id = access_key_id
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.throttle = 0
        """How many of the next requests get Polly's throttling answer: a 400 whose
        ``x-amzn-ErrorType`` is ``ThrottlingException`` (docs: Quotas in Amazon Polly)."""
        self.signed_headers: list[list[str]] = []
        """The ``SignedHeaders`` of each request whose signature was checked."""

    def _check_signature(self, request: Any, headers: dict[str, str], body: bytes) -> Any:
        """None when the request is signed by the known key, else the 403 to answer."""
        return check_sigv4(
            request,
            headers,
            body,
            service="polly",
            access_key_id=self.access_key_id,
            secret_key=self.api_key,
            signed_headers=self.signed_headers,
        )

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        raw = await request.body()
        refused = self._check_signature(request, headers, raw)
        if refused is not None:
            return refused
        try:
            body = json.loads(raw)
        except ValueError:
            return aws_error(400, "SerializationException", "the body is not JSON")
        if not isinstance(body, dict):
            return aws_error(400, "SerializationException", "the body is not a JSON object")
        self.requests.append(body)
        problem = _validate(body)
        if problem is not None:
            return aws_error(400, *problem)
        spoken = _spoken_text(body)
        if spoken is None:
            return aws_error(400, "InvalidSsmlException", "Invalid SSML request")
        if len(spoken) > MAX_CHARACTERS:
            return aws_error(
                400,
                "TextLengthExceededException",
                f"Maximum text length has been exceeded ({MAX_CHARACTERS} characters).",
            )
        if self.throttle > 0:
            self.throttle -= 1
            return aws_error(400, "ThrottlingException", "Rate exceeded")
        status = self._next_status()
        if status != 200:
            code = _SCRIPTED_CODES.get(status, "ServiceFailureException")
            return aws_error(status, code, f"scripted error {status}")
        rate = int(body.get("SampleRate", "16000"))
        pcm = tone_pcm(len(spoken.split()) * self.secs_per_word, rate)
        step = max(2, int(self.chunk_secs * rate) * 2)

        async def audio() -> Any:
            for i in range(0, len(pcm), step):
                yield pcm[i : i + step]
                await asyncio.sleep(self.chunk_delay)

        answer_headers = {
            "x-amzn-RequestCharacters": str(len(spoken)),
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        return StreamingResponse(audio(), media_type="audio/pcm", headers=answer_headers)


def check_sigv4(
    request: Any,
    headers: dict[str, str],
    body: bytes,
    *,
    service: str,
    access_key_id: str,
    secret_key: str | None,
    signed_headers: list[list[str]],
) -> Any:
    """None when ``request`` (its lower-cased ``headers`` and raw ``body``) carries a SigV4
    signature for ``service`` by ``access_key_id`` with ``secret_key`` (None: any well-formed
    signature passes), else the 403 AWS answers; the ``SignedHeaders`` of each checked request
    are added to ``signed_headers``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = _AUTH.match(headers.get("authorization", ""))
    amz_date = headers.get("x-amz-date", "")
    if found is None or not amz_date:
        return aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if found["service"] != service or found["date"] != amz_date[:8]:
        return aws_error(
            403, "InvalidSignatureException", f"Credential should be scoped to {service} and today."
        )
    signed = found["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return aws_error(403, "InvalidSignatureException", "host and x-amz-date must be signed.")
    signed_headers.append(signed)
    if secret_key is None:
        return None
    if found["key"] != access_key_id:
        return aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    url = str(request.url)
    raw_path = request.scope.get("raw_path")
    if isinstance(raw_path, bytes):  # as sent: the signature covers the encoded path
        url = str(request.url.replace(path=raw_path.decode("ascii")))
    aws_request = AWSRequest(
        method=request.method,
        url=url,
        data=body,
        headers={name: headers.get(name, "") for name in signed},
    )
    aws_request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key_id, secret_key), service, found["region"])
    canonical = auth.canonical_request(aws_request)
    expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
    if not hmac.compare_digest(expected, found["signature"]):
        return aws_error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


def _validate(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(code, message)`` of what Polly would refuse in ``body``, else None."""
    for name in ("Text", "VoiceId", "OutputFormat"):
        if not isinstance(body.get(name), str) or not body[name]:
            return "ValidationException", f"1 validation error detected: {name} is required"
    fmt = body["OutputFormat"]
    if fmt not in OUTPUT_FORMATS:
        return "ValidationException", f"OutputFormat {fmt!r} is not one of {OUTPUT_FORMATS}"
    if fmt != "pcm":
        return "ValidationException", "the fake serves OutputFormat pcm only"
    if body.get("TextType", "text") not in ("text", "ssml"):
        return "ValidationException", "TextType must be text or ssml"
    if "Engine" in body and body["Engine"] not in ENGINES:
        return "ValidationException", f"Engine must be one of {ENGINES}"
    if body.get("SampleRate", "16000") not in PCM_RATES:
        return "InvalidSampleRateException", "pcm takes SampleRate 8000 or 16000"
    lexicons = body.get("LexiconNames", [])
    if not isinstance(lexicons, list) or not all(isinstance(n, str) for n in lexicons):
        return "ValidationException", "LexiconNames must be a list of names"
    return None


def _spoken_text(body: dict[str, Any]) -> str | None:
    """The text to speak (for SSML, its text without the tags); None: SSML that is not valid."""
    text = str(body["Text"])
    if body.get("TextType", "text") != "ssml":
        return text
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag != "speak":
        return None
    return "".join(root.itertext())
