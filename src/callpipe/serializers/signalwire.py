"""SignalWire bidirectional streams (cXML ``<Connect><Stream>``): Twilio's Media Streams wire.

SignalWire's Compatibility API speaks Twilio's Media Streams messages (``connected``, ``start``,
``media``, ``dtmf``, ``mark``, ``stop``; the bot sends ``media``, ``clear``, ``mark``) with
µ-law 8 kHz audio, so the wire codec is Twilio's; what differs is the REST host and credentials
of the automatic hang-up: the project's Space (``https://{space}.signalwire.com/api/laml``),
the project id and an API token.
"""

from __future__ import annotations

from callpipe.errors import ConfigurationError
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.telephony.signalwire import SignalWireCallControl, signalwire_api_root


class SignalWireFrameSerializer(TwilioFrameSerializer):
    """Serializer for one SignalWire stream of one call (call SIDs are UUIDs)."""

    class InputParams(TwilioFrameSerializer.InputParams):
        """As Twilio's: ``auto_hang_up`` ends the call through SignalWire's REST API."""

    def __init__(
        self,
        stream_sid: str,
        call_sid: str | None = None,
        project_id: str | None = None,
        api_token: str | None = None,
        space: str | None = None,
        base_url: str | None = None,
        params: InputParams | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        if p.auto_hang_up:
            missing = [
                name
                for name, value in (
                    ("call_sid", call_sid),
                    ("project_id", project_id),
                    ("api_token", api_token),
                    ("space (or base_url)", space or base_url),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "SignalWireFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=SignalWireFrameSerializer.InputParams(auto_hang_up=False)"
                )
        root = signalwire_api_root(space, base_url) if (space or base_url) else None
        super().__init__(
            stream_sid,
            call_sid,
            account_sid=project_id,
            auth_token=api_token,
            base_url=root,
            params=p,
        )
        if call_sid and project_id and api_token and root:
            self.call_control = SignalWireCallControl(
                project_id=project_id, call_sid=call_sid, api_token=api_token, base_url=root
            )
