"""FakeCambServer: Camb.ai's streaming text-to-speech endpoint (``POST /apis/tts-stream``) on
127.0.0.1. A client's base URL is ``fake.base_url`` (``.../apis``, as Camb's is
``https://client.camb.ai/apis``).

The key goes in an ``x-api-key`` header (a wrong one: HTTP 401 ``{"detail": ...}``). The JSON
body, as Camb documents it and its SDK sends it: ``text`` (3 to 3000 characters), ``language``
(a lower-case BCP 47 locale), ``voice_id`` (an integer), and optionally ``speech_model`` (a
MARS model), ``user_instructions``, ``enhance_named_entities_pronunciation``,
``output_configuration`` (``format``, ``sample_rate``, ...), ``voice_settings`` and
``inference_options``; ``null`` stands for "not given". A body Camb would refuse gets HTTP 422
with its validation error (``{"detail": [{"loc", "msg", "type"}]}``). The answer streams raw
16-bit PCM (``format`` ``pcm_s16le``, the one format the fake encodes) at the model's rate
(``mars-pro``: 48000 Hz, others 22050 Hz), a tone of ``secs_per_word`` per word, with the
``X-Credits-Required`` header Camb sends.
"""

from __future__ import annotations

import json
from typing import Any

from callpipe.testing.fakes._tts import SpeechHTTPFake, paced, speech_chunks

PATH = "/apis/tts-stream"
MODELS = ("mars-pro", "mars-flash", "mars-instruct", "mars-8.1-pro-beta", "mars-8.1-flash-beta")
MODEL_RATES = {"mars-pro": 48000, "mars-8.1-pro-beta": 48000}
"""The PCM rate of each model (others: 22050 Hz)."""
FORMATS = ("pcm_s16le",)
FIELDS = frozenset(
    {
        "text",
        "language",
        "voice_id",
        "speech_model",
        "user_instructions",
        "enhance_named_entities_pronunciation",
        "output_configuration",
        "voice_settings",
        "inference_options",
    }
)


def body_problem(body: Any) -> tuple[str, str] | None:
    """(field, why) a request body would be refused for (None: accepted)."""
    if not isinstance(body, dict):
        return "body", "expected a JSON object"
    unknown = set(body) - FIELDS
    if unknown:
        return sorted(unknown)[0], "extra fields not permitted"
    text = body.get("text")
    if not isinstance(text, str) or not 3 <= len(text) <= 3000:
        return "text", "text must be 3 to 3000 characters"
    language = body.get("language")
    if not isinstance(language, str) or language != language.lower() or "-" not in language:
        return "language", "language must be a lower-case BCP 47 locale such as en-us"
    voice = body.get("voice_id")
    if not isinstance(voice, int) or isinstance(voice, bool):
        return "voice_id", "voice_id must be an integer"
    model = body.get("speech_model")
    if model is not None and model not in MODELS:
        return "speech_model", f"speech_model must be one of {MODELS}"
    instructions = body.get("user_instructions")
    if instructions is not None and (not isinstance(instructions, str) or len(instructions) > 1000):
        return "user_instructions", "user_instructions must be at most 1000 characters"
    output = body.get("output_configuration")
    if output is not None:
        if not isinstance(output, dict):
            return "output_configuration", "expected an object"
        if output.get("format") not in FORMATS:
            return "output_configuration.format", f"the fake encodes {FORMATS}"
    return None


class FakeCambServer(SpeechHTTPFake):
    """See the module docstring. ``async with FakeCambServer() as fake: fake.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay

    @property
    def base_url(self) -> str:
        """The base a client takes (``.../apis``)."""
        return self._http_origin + "/apis"

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("x-api-key") != self.api_key:
            return JSONResponse({"detail": "Invalid API key"}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self.requests.append(body if isinstance(body, dict) else {})
        problem = body_problem(body)
        if problem is not None:
            where, why = problem
            error = {"loc": ["body", *where.split(".")], "msg": why, "type": "value_error"}
            return JSONResponse({"detail": [error]}, 422)
        status = self._next_status()
        if status != 200:
            return JSONResponse({"detail": f"scripted error {status}"}, status)
        rate = MODEL_RATES.get(str(body.get("speech_model")), 22050)
        chunks = speech_chunks(
            len(body["text"].split()) * self.secs_per_word, rate, self.chunk_secs
        )

        headers = {"X-Credits-Required": str(len(body["text"]))}
        return StreamingResponse(
            paced(chunks, self.chunk_delay), media_type="audio/pcm", headers=headers
        )
