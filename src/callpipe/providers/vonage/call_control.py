"""REST control of a Vonage stream's call leg, when the application's JWT credentials are set.

DTMF (``PUT /v1/calls/{uuid}/dtmf``) and transfer go through
:class:`callpipe.telephony.vonage.VonageCallControl`; hang-up stays with the socket, as before
(the serializer's ``auto_hang_up`` is off).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from callpipe.errors import MissingDependencyError
from callpipe.providers.base import env_value
from callpipe.telephony.vonage import VonageCallControl

logger = logging.getLogger(__name__)


def vonage_call_control(call_uuid: str | None, env: Mapping[str, str]) -> VonageCallControl | None:
    """The call control for ``call_uuid``, or None without ``VONAGE_APPLICATION_ID`` and
    ``VONAGE_PRIVATE_KEY`` (PEM text or a path) or without PyJWT (one warning)."""
    app_id, key = env_value(env, "VONAGE_APPLICATION_ID"), env_value(env, "VONAGE_PRIVATE_KEY")
    if not (app_id and key and call_uuid):
        return None
    from callpipe.providers.vonage.jwt import VonageJwt

    try:
        bearer = VonageJwt(app_id, key)
    except MissingDependencyError as exc:
        logger.warning("vonage call control off: %s", exc)
        return None
    return VonageCallControl(call_uuid=call_uuid, bearer=bearer)
