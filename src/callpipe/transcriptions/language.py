"""Language tags (BCP 47) for speech services: ``Language.EN_US == "en-US"``.

Members are named after their tag (``pt-BR`` -> ``PT_BR``), so the set is data, kept in one
string; ``resolve_language`` maps a member to a service's own code, falling back to the base
language (``en-GB`` -> ``en``) when the service knows only that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

logger = logging.getLogger(__name__)

_TAGS = """
af af-ZA am am-ET ar ar-001 ar-AE ar-BH ar-DZ ar-EG ar-IQ ar-JO ar-KW ar-LB ar-LY ar-MA
ar-OM ar-QA ar-SA ar-SY ar-TN ar-XA ar-YE as as-IN ast az az-AZ ba be be-BY bg bg-BG bn
bn-BD bn-IN bo br brx brx-IN bs bs-BA ca ca-ES ceb ceb-PH ckb ckb-IQ ckb-IR cmn cmn-CN cs
cs-CZ cy cy-GB da da-DK de de-AT de-BE de-CH de-DE doi doi-IN el el-GR en en-AB en-AU en-CA
en-GB en-GH en-HK en-IE en-IN en-KE en-NG en-NZ en-PH en-SG en-TZ en-US en-WL en-ZA eo es
es-419 es-AR es-BO es-CL es-CO es-CR es-CU es-DO es-EC es-ES es-GQ es-GT es-HN es-MX es-NI
es-PA es-PE es-PR es-PY es-SV es-US es-UY es-VE et et-EE eu eu-ES fa fa-AF fa-IR ff fi fi-FI
fil fil-PH fo fr fr-BE fr-CA fr-CH fr-FR ga ga-IE gd gl gl-ES gu gu-IN ha haw he he-IL hi
hi-IN hr hr-HR ht ht-HT hu hu-HU hy hy-AM id id-ID ig is is-IS it it-CH it-IT iu-Cans
iu-Cans-CA iu-Latn iu-Latn-CA ja ja-JP jv jv-ID jv-JV jw ka ka-GE kab kab-DZ kea kk kk-KZ km
km-KH kn kn-IN ko ko-KR kok kok-IN ks ks-IN ku ky ky-KG la la-VA lb lb-LU lg ln lo lo-LA lt
lt-LT luo lv lv-LV mai mai-IN mg mg-MG mi mk mk-MK ml ml-IN mn mn-MN mni mni-IN mr mr-IN ms
ms-MY mt mt-MT my my-MM nb nb-NO ne ne-IN ne-NP nl nl-BE nl-NL nn nn-NO no nso ny oc or
or-IN pa pa-IN pl pl-PL ps ps-AF pt pt-BR pt-PT ro ro-RO ru ru-RU sa sa-IN sat sat-IN sd
sd-IN si si-LK sk sk-SK sl sl-SI sn so so-SO sq sq-AL sr sr-Latn sr-Latn-RS sr-RS su su-ID
sv sv-SE sw sw-BI sw-KE sw-RW sw-TZ sw-UG ta ta-IN ta-LK ta-MY ta-SG te te-IN tg th th-TH tk
tl tr tr-TR tt ug uk uk-UA umb ur ur-IN ur-PK uz uz-UZ vi vi-VN wo wuu wuu-CN yi yo yue
yue-CN zh zh-CN zh-CN-guangxi zh-CN-henan zh-CN-liaoning zh-CN-shaanxi zh-CN-shandong
zh-CN-sichuan zh-HK zh-TW zu zu-ZA
"""

_EXTRA = {"MY_MR": "mymr", "XH": "xh-ZA"}  # two historical names that do not follow the rule


def _members() -> dict[str, str]:
    members = {tag.upper().replace("-", "_"): tag for tag in _TAGS.split()}
    members.update(_EXTRA)
    return members


Language = StrEnum("Language", _members(), module=__name__)  # type: ignore[misc]
Language.__doc__ = "A BCP 47 language tag; the value is the tag (``Language.ES_MX == 'es-MX'``)."


USUAL_REGIONS: Mapping[str, str] = {
    "af": "af-ZA",
    "am": "am-ET",
    "az": "az-AZ",
    "bg": "bg-BG",
    "bn": "bn-IN",
    "bs": "bs-BA",
    "ca": "ca-ES",
    "cs": "cs-CZ",
    "da": "da-DK",
    "de": "de-DE",
    "el": "el-GR",
    "en": "en-US",
    "es": "es-ES",
    "et": "et-EE",
    "eu": "eu-ES",
    "fa": "fa-IR",
    "fi": "fi-FI",
    "fil": "fil-PH",
    "fr": "fr-FR",
    "gl": "gl-ES",
    "gu": "gu-IN",
    "hi": "hi-IN",
    "hr": "hr-HR",
    "hu": "hu-HU",
    "hy": "hy-AM",
    "id": "id-ID",
    "is": "is-IS",
    "it": "it-IT",
    "ja": "ja-JP",
    "jv": "jv-ID",
    "ka": "ka-GE",
    "kk": "kk-KZ",
    "km": "km-KH",
    "kn": "kn-IN",
    "ko": "ko-KR",
    "lo": "lo-LA",
    "lt": "lt-LT",
    "lv": "lv-LV",
    "mk": "mk-MK",
    "ml": "ml-IN",
    "mn": "mn-MN",
    "mr": "mr-IN",
    "ms": "ms-MY",
    "my": "my-MM",
    "ne": "ne-NP",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "pt": "pt-PT",
    "ro": "ro-RO",
    "ru": "ru-RU",
    "si": "si-LK",
    "sk": "sk-SK",
    "sl": "sl-SI",
    "sq": "sq-AL",
    "sr": "sr-RS",
    "su": "su-ID",
    "sv": "sv-SE",
    "ta": "ta-IN",
    "te": "te-IN",
    "th": "th-TH",
    "tr": "tr-TR",
    "uk": "uk-UA",
    "ur": "ur-IN",
    "uz": "uz-UZ",
    "vi": "vi-VN",
    "zu": "zu-ZA",
}
"""The locale a bare language code usually stands for (``"de"`` -> ``"de-DE"``): the entries
Azure's and Google's speech recognizers agree on; each service adds the codes where its own
locale differs (``"ar"``, ``"zh"``, ``"he"`` ...) on top.
"""


def resolve_language(
    language: str, language_map: Mapping[str, str], use_base_code: bool = True
) -> str:
    """The service's code for ``language``: the map's entry, else (optionally) its base's.

    Unknown languages pass through as their own tag (logged once per call at WARNING), so a
    service gets a best effort instead of an exception mid-call.
    """
    value = str(language)
    if value in language_map:
        return language_map[value]
    base = value.split("-", 1)[0]
    if use_base_code and base in language_map:
        return language_map[base]
    logger.warning("language %s not in the service's list; passing it through", value)
    return base if use_base_code else value
