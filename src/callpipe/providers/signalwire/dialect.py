"""The SignalWire dialect of the call simulator: Twilio's Media Streams messages, SignalWire ids.

SignalWire's project (account) ids and call SIDs are UUIDs where Twilio's are ``AC…``/``CA…``;
the runner tells the two apart by that shape.
"""

from __future__ import annotations

import uuid

from callpipe.providers.dialect import CallIdentity
from callpipe.providers.twilio.dialect import TwilioDialect


class SignalWireDialect(TwilioDialect):
    """SignalWire bidirectional ``<Connect><Stream>``: µ-law 8 kHz in Twilio-shaped JSON."""

    name = "signalwire"

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or str(uuid.uuid4())
        identity.call_id = identity.call_id or str(uuid.uuid4())
        identity.account_id = identity.account_id or str(uuid.uuid4())
