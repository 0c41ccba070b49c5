"""The shared region table for bare language codes, as Azure and Google STT read it."""

from __future__ import annotations

from callpipe.services.azure.common import language_to_azure_language
from callpipe.services.google.stt import language_to_google_stt_language
from callpipe.transcriptions.language import USUAL_REGIONS, Language


def test_usual_regions_map_a_bare_code_to_a_locale_of_that_language() -> None:
    assert USUAL_REGIONS["de"] == "de-DE"
    for code, locale in USUAL_REGIONS.items():
        assert "-" not in code
        assert locale.split("-", 1)[0] == code
        assert Language(locale) == locale


def test_both_recognizers_use_the_shared_region_and_keep_their_own_picks() -> None:
    assert language_to_azure_language("fr") == language_to_google_stt_language("fr") == "fr-FR"
    assert language_to_azure_language(Language.AR) == "ar-AE"
    assert language_to_google_stt_language(Language.AR) == "ar-EG"
    assert language_to_azure_language(Language.ZH) == "zh-CN"
    assert language_to_google_stt_language(Language.ZH) == "cmn-Hans-CN"
