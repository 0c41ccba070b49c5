"""Provider handshake messages (shapes from the providers' media-stream documentation)."""

from __future__ import annotations

import json
from typing import Any


def handshake(provider: str, *, stream_id: str, call_id: str, **extra: Any) -> list[str]:
    """The text messages a provider sends when its media stream opens."""
    if provider == "twilio":
        params = extra.get("custom_parameters", {"from_number": "+15551112222"})
        return [
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "streamSid": stream_id,
                    "start": {
                        "streamSid": stream_id,
                        "accountSid": "AC123",
                        "callSid": call_id,
                        "tracks": ["inbound"],
                        "customParameters": params,
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                }
            ),
        ]
    if provider == "telnyx":
        return [
            json.dumps({"event": "connected", "version": "1.0.0"}),
            json.dumps(
                {
                    "event": "start",
                    "sequence_number": "1",
                    "stream_id": stream_id,
                    "start": {
                        "call_control_id": call_id,
                        "from": "+15551112222",
                        "to": "+15553334444",
                        "media_format": {
                            "encoding": extra.get("encoding", "PCMA"),
                            "sample_rate": 8000,
                            "channels": 1,
                        },
                    },
                }
            ),
        ]
    if provider == "plivo":
        return [
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": 1,
                    "start": {
                        "callId": call_id,
                        "streamId": stream_id,
                        "accountId": "MA123",
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    },
                    "extra_headers": extra.get("extra_headers", "from=15551112222,to=15553334444"),
                }
            )
        ]
    if provider == "exotel":
        return [
            json.dumps({"event": "connected"}),
            json.dumps(
                {
                    "event": "start",
                    "sequence_number": "1",
                    "stream_sid": stream_id,
                    "start": {
                        "stream_sid": stream_id,
                        "call_sid": call_id,
                        "account_sid": "exo_acc",
                        "from": "+919876543210",
                        "to": "+918047491899",
                        "custom_parameters": extra.get("custom_parameters", {"key1": "value1"}),
                        "media_format": {
                            "encoding": "audio/x-raw",
                            "sample_rate": "8000",
                            "bit_rate": "16",
                        },
                    },
                }
            ),
        ]
    if provider == "vonage":
        return [
            json.dumps(
                {
                    "event": "websocket:connected",
                    "content-type": "audio/l16;rate=16000",
                    "from": "15551112222",
                    "to": "15553334444",
                    "call_id": call_id,
                }
            )
        ]
    raise ValueError(provider)
