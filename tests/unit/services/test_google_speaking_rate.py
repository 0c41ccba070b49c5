"""The speaking-rate check Google's HTTP and gRPC TTS services share."""

from __future__ import annotations

import pytest

from callpipe.errors import ConfigurationError
from callpipe.services.google._tts_grpc import check_speaking_rate, drop_bad_speaking_rate
from callpipe.services.google.tts import GoogleHttpTTSSettings
from callpipe.utils.types import NOT_GIVEN


def test_a_rate_google_refuses_fails_at_construction() -> None:
    check_speaking_rate(1.5)
    check_speaking_rate(None)
    with pytest.raises(ConfigurationError, match="0.25 to 2.0"):
        check_speaking_rate(9.0)


def test_an_update_keeps_the_rest_when_its_rate_is_refused() -> None:
    good = GoogleHttpTTSSettings(speaking_rate=1.2, voice="v")
    assert drop_bad_speaking_rate("svc", good, good.speaking_rate) is good
    bad = GoogleHttpTTSSettings(speaking_rate=0.1, voice="v")
    kept = drop_bad_speaking_rate("svc", bad, bad.speaking_rate)
    assert kept.speaking_rate is NOT_GIVEN and kept.voice == "v"
