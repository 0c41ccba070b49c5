"""What Azure's speech services share: where their REST endpoints are, and Azure's locales.

Azure Speech answers on regional hosts (``https://{region}.tts.speech.microsoft.com`` for
synthesis, ``https://{region}.stt.speech.microsoft.com`` for recognition) or, for a resource
with a custom domain (Private Link, ``private_endpoint=``), on that one host with the service's
name in front of the path (``/tts/cognitiveservices/v1``,
``/stt/speech/recognition/conversation/cognitiveservices/v1``; see
https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-private-link).
``$CALLPIPE_AZURE_SPEECH_URL`` (``callpipe fakes``) is such a custom-domain origin.
"""

from __future__ import annotations

import os

from callpipe.errors import ConfigurationError
from callpipe.services._env import AZURE_SPEECH_URL_ENV
from callpipe.transcriptions.language import USUAL_REGIONS, resolve_language

API_KEY_ENV = "AZURE_SPEECH_API_KEY"
"""Pipecat's variable for the Speech resource's key (its CLI templates read it)."""
REGION_ENV = "AZURE_SPEECH_REGION"

TTS_PATH = "/cognitiveservices/v1"
STT_PATH = "/speech/recognition/conversation/cognitiveservices/v1"

_DEFAULT_LOCALES = {
    **USUAL_REGIONS,
    "ar": "ar-AE",
    "as": "as-IN",
    "cy": "cy-GB",
    "ga": "ga-IE",
    "he": "he-IL",
    "mt": "mt-MT",
    "nb": "nb-NO",
    "no": "nb-NO",
    "or": "or-IN",
    "pa": "pa-IN",
    "ps": "ps-AF",
    "so": "so-SO",
    "sr-Latn": "sr-Latn-RS",
    "sw": "sw-KE",
    "wuu": "wuu-CN",
    "yue": "yue-CN",
    "zh": "zh-CN",
}
"""The locale Azure gets for a bare language code (as Pipecat 1.14 picks it)."""


def language_to_azure_language(language: str) -> str:
    """Azure's locale for a language tag: ``"en"`` -> ``"en-US"``; a tag with a region
    (``"en-GB"``, ``Language.ES_MX``) is already a locale and goes as it is."""
    value = str(language)
    if "-" in value and value not in _DEFAULT_LOCALES:
        return value
    return resolve_language(value, _DEFAULT_LOCALES, use_base_code=False)


def speech_origin(
    service: str, kind: str, region: str | None, private_endpoint: str | None
) -> tuple[str, str]:
    """The origin and path prefix of one of Azure's speech services (``kind``: ``"tts"`` or
    ``"stt"``): ``private_endpoint``, else ``$CALLPIPE_AZURE_SPEECH_URL`` (custom-domain form,
    ``/tts`` or ``/stt`` in front of the path), else the region's host (no prefix)."""
    custom = private_endpoint or os.environ.get(AZURE_SPEECH_URL_ENV, "").strip()
    if custom:
        return custom.rstrip("/"), f"/{kind}"
    region = region or os.environ.get(REGION_ENV, "").strip()
    if not region:
        raise ConfigurationError(
            f"{service}: either region=... (or ${REGION_ENV}) or private_endpoint=... is needed."
        )
    return f"https://{region}.{kind}.speech.microsoft.com", ""
