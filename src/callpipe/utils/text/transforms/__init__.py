"""Text transforms for ``text_transforms`` on a TTS service (Pipecat 1.14's
``pipecat.utils.text.transforms``).

Each is an async callable ``(text, text_type) -> text`` (``expand_numbers`` and
``replace_text`` are factories returning one) rewriting what the provider is sent, so a
caller hears "five five five, one two three, four five six seven" for a phone number and
"twelve dollars and fifty cents" for ``$12.50``::

    tts = CartesiaTTSService(
        ..., text_transforms=[("*", strip_markdown), ("*", expand_currency)]
    )

or all of them through one configurable :class:`VoiceFormatter`::

    tts = CartesiaTTSService(..., text_transforms=[("*", VoiceFormatter())])

The transforms that say numbers in words (currency, dates, percentages, numbers and
``VoiceFormatter`` with them on) need num2words: ``pip install 'callpipe[text]'``. Importing
this package does not; a transform that needs it raises
:class:`~callpipe.errors.MissingDependencyError` when it is missing. The expansions are
English.

A :class:`PronunciationTransform` (built by a TTS service's ``pronunciation_transform_ipa``)
makes the service say chosen words as IPA describes, in the service's own markup.
"""

from callpipe.utils.text.transforms.acronyms import normalize_acronyms
from callpipe.utils.text.transforms.currency import expand_currency
from callpipe.utils.text.transforms.dates import normalize_dates
from callpipe.utils.text.transforms.email import email_to_speech
from callpipe.utils.text.transforms.numbers import expand_numbers
from callpipe.utils.text.transforms.percentages import expand_percentages
from callpipe.utils.text.transforms.phone import expand_phone_numbers
from callpipe.utils.text.transforms.replacements import replace_text
from callpipe.utils.text.transforms.strip_markdown import StripMarkdown, strip_markdown
from callpipe.utils.text.transforms.text_transform import TextTransform
from callpipe.utils.text.transforms.units import expand_units
from callpipe.utils.text.transforms.voice_formatter import VoiceFormatter

__all__ = [
    "StripMarkdown",
    "TextTransform",
    "VoiceFormatter",
    "email_to_speech",
    "expand_currency",
    "expand_numbers",
    "expand_percentages",
    "expand_phone_numbers",
    "expand_units",
    "normalize_acronyms",
    "normalize_dates",
    "replace_text",
    "strip_markdown",
]
