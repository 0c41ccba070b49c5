"""AudioHook upgrade authentication: the ``X-API-KEY`` header and HTTP Message Signatures.

Genesys Cloud opens the AudioHook WebSocket with ``X-API-KEY`` (the integration's API key) and,
when the integration has a client secret, signs the upgrade request the way HTTP Message
Signatures (RFC 9421) describe: ``Signature-Input: sig1=("@request-target" "@authority"
"audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");
keyid="<api key>";nonce="...";alg="hmac-sha256";created=...;expires=...`` and ``Signature:
sig1=:<base64 HMAC-SHA256>:``, keyed with the base64-decoded client secret.

The signature base is rebuilt from the *parsed* ``Signature-Input`` (one ``"name": value`` line
per covered component, then ``"@signature-params": <inner list>``), so only a strictly encoded
header can verify. Replay protection: ``created`` must be recent (``max_age``) and not in the
future, ``expires`` not past, and each ``nonce`` is admitted once while its signature is fresh.
Everything here is sans-I/O (headers in, bool out) and never raises on hostile input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from callpipe.providers.base import SignedUpgrade, safe_equal

API_KEY_HEADER = "x-api-key"
REQUIRED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    API_KEY_HEADER,
)
"""What an AudioHook signature must cover (Genesys's reference server requires the same)."""
MAX_AGE_SECS = 10.0
"""A signature older than this (by ``created``) is refused: the upgrade follows signing at once."""
CLOCK_SKEW_SECS = 3.0
MIN_NONCE_CHARS = 16
MAX_HEADER_CHARS = 4096

_KEY = r"[a-z*][a-z0-9_.*-]*"
_STRING = r'"(?:[^"\\\x00-\x1f\x7f]|\\["\\])*"'
_INTEGER = r"-?[0-9]{1,15}"
_TOKEN = r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*"
_PARAM = rf";\s*({_KEY})(?:=({_STRING}|{_INTEGER}|{_TOKEN}))?"
_INNER_LIST = re.compile(rf"\(\s*((?:{_STRING}(?:\s+{_STRING})*)?)\s*\)((?:{_PARAM})*)")
_STRINGS = re.compile(_STRING)
_PARAMS = re.compile(_PARAM)
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_LABEL = re.compile(rf"\s*({_KEY})=")


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """One parsed ``Signature-Input`` member: covered components and signature parameters."""

    label: str
    components: tuple[str, ...]
    params: tuple[tuple[str, str | int | bool], ...]

    def param(self, name: str) -> str | int | bool | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def serialized(self) -> str:
        """The inner list as RFC 8941 serializes it (the ``@signature-params`` value)."""
        items = " ".join(_sf_string(c) for c in self.components)
        out = [f"({items})"]
        for key, value in self.params:
            if value is True:
                out.append(f";{key}")
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(f";{key}={value}")
            else:
                out.append(f";{key}={_sf_string(str(value))}")
        return "".join(out)


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _members(header: str) -> list[tuple[str, str]]:
    """``label=value`` members of a structured-field dictionary (values unparsed)."""
    members: list[tuple[str, str]] = []
    rest = header.strip()
    while rest:
        match = _LABEL.match(rest)
        if match is None:
            return []
        label, rest = match[1], rest[match.end() :]
        depth, quoted, escaped, end = 0, False, False, len(rest)
        for i, ch in enumerate(rest):
            if escaped:
                escaped = False
            elif quoted:
                escaped, quoted = ch == "\\", ch != '"'
            elif ch == '"':
                quoted = True
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                end = i
                break
        members.append((label, rest[:end].strip()))
        rest = rest[end + 1 :].strip()
    return members


def parse_signature_input(header: str) -> list[SignatureInput]:
    """Every member of a ``Signature-Input`` header; empty if any of it is malformed."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return []
    parsed: list[SignatureInput] = []
    for label, value in _members(header):
        match = _INNER_LIST.fullmatch(value)
        if match is None:
            return []
        components = tuple(_unquote(s) for s in _STRINGS.findall(match[1]))
        params: list[tuple[str, str | int | bool]] = []
        for key, raw in _PARAMS.findall(match[2]):
            if not raw:
                params.append((key, True))
            elif raw.startswith('"'):
                params.append((key, _unquote(raw)))
            elif raw.lstrip("-").isdigit():
                params.append((key, int(raw)))
            else:
                params.append((key, raw))
        parsed.append(SignatureInput(label, components, tuple(params)))
    return parsed


def parse_signature(header: str) -> dict[str, bytes]:
    """``label -> signature bytes`` from a ``Signature`` header; empty if malformed."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return {}
    out: dict[str, bytes] = {}
    for label, value in _members(header):
        match = _BYTES.fullmatch(value)
        if match is None:
            return {}
        try:
            out[label] = base64.b64decode(match[1], validate=True)
        except (binascii.Error, ValueError):
            return {}
    return out


def _canonical(value: str) -> str:
    """A header value as the signature base holds it (trimmed, obsolete folding joined)."""
    return re.sub(r"[ \t]*\r\n[ \t]+", " ", value.strip())


def signature_base(
    signature_input: SignatureInput,
    headers: Mapping[str, str],
    derived: Mapping[str, str],
) -> str | None:
    """The text that was signed, or None if a covered component is missing or unsupported."""
    lines: list[str] = []
    seen: set[str] = set()
    for name in signature_input.components:
        if name in seen or name == "@signature-params":
            return None
        seen.add(name)
        value = derived.get(name) if name.startswith("@") else headers.get(name)
        if value is None:
            return None
        lines.append(f"{_sf_string(name)}: {_canonical(value)}")
    lines.append(f'"@signature-params": {signature_input.serialized()}')
    return "\n".join(lines)


def hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def decode_client_secret(secret: str) -> bytes | None:
    """The HMAC key from the integration's client secret (base64, as Genesys shows it)."""
    try:
        return base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass
class AudioHookVerifier:
    """Checks one AudioHook upgrade: API key always, the signature when a client secret is set.

    ``organization_id`` (optional) pins the ``Audiohook-Organization-Id`` header to your org.
    """

    api_key: str
    client_secret: bytes | None = None
    organization_id: str | None = None
    max_age: float = MAX_AGE_SECS
    clock: Callable[[], float] = time.time
    _nonces: dict[str, float] = field(default_factory=dict, repr=False)

    def verify(self, request: SignedUpgrade) -> bool:
        return self.refusal(request) is None

    def refusal(self, request: SignedUpgrade) -> str | None:
        """Why the upgrade is refused (a short reason without secrets), or None if it passes."""
        headers = request.headers
        presented = headers.get(API_KEY_HEADER)
        if not presented or not safe_equal(_canonical(presented), self.api_key):
            return "missing or wrong X-API-KEY"
        if self.organization_id is not None:
            org = headers.get("audiohook-organization-id") or ""
            if not safe_equal(org.strip(), self.organization_id):
                return "organization id does not match GENESYS_ORGANIZATION_ID"
        if self.client_secret is None:
            return None  # the integration has no client secret: the API key is the check
        return self._signature_refusal(request)

    def _signature_refusal(self, request: SignedUpgrade) -> str | None:
        headers = request.headers
        inputs = parse_signature_input(headers.get("signature-input") or "")
        signatures = parse_signature(headers.get("signature") or "")
        if not inputs or not signatures:
            return "missing or malformed Signature/Signature-Input"
        sig_input = inputs[0]
        signature = signatures.get(sig_input.label)
        if signature is None:
            return "no signature for the signature input's label"
        if any(c not in sig_input.components for c in REQUIRED_COMPONENTS):
            return "signature does not cover the AudioHook headers"
        alg = sig_input.param("alg")
        if alg not in (None, "hmac-sha256"):
            return "unsupported signature algorithm"
        keyid = sig_input.param("keyid")
        if not isinstance(keyid, str) or not safe_equal(keyid, self.api_key):
            return "signature keyid is not the API key"
        stale = self._freshness_refusal(sig_input)
        if stale is not None:
            return stale
        derived = {"@request-target": request.target, "@authority": request.authority.lower()}
        base = signature_base(sig_input, headers, derived)
        if base is None:
            return "a covered component is missing"
        assert self.client_secret is not None
        if not hmac.compare_digest(hmac_sha256(self.client_secret, base), signature):
            return "signature mismatch"
        nonce = sig_input.param("nonce")
        assert isinstance(nonce, str)
        if not self._claim_nonce(nonce):
            return "replayed nonce"
        return None

    def _freshness_refusal(self, sig_input: SignatureInput) -> str | None:
        now = self.clock()
        created, expires = sig_input.param("created"), sig_input.param("expires")
        if not isinstance(created, int) or isinstance(created, bool):
            return "signature has no created time"
        if created > now + CLOCK_SKEW_SECS:
            return "signature created in the future"
        if created + self.max_age < now - CLOCK_SKEW_SECS:
            return "signature too old"
        if isinstance(expires, int) and not isinstance(expires, bool) and expires < now:
            return "signature expired"
        nonce = sig_input.param("nonce")
        if not isinstance(nonce, str) or len(nonce) < MIN_NONCE_CHARS:
            return "signature has no (or too short a) nonce"
        return None

    def _claim_nonce(self, nonce: str) -> bool:
        """Admit each nonce once while signatures carrying it could still be fresh."""
        now = self.clock()
        if len(self._nonces) > 1000:
            self._nonces = {n: t for n, t in self._nonces.items() if t >= now}
        if self._nonces.get(nonce, 0.0) >= now:
            return False
        self._nonces[nonce] = now + self.max_age + 2 * CLOCK_SKEW_SECS
        return True
