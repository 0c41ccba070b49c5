"""Shared pytest configuration."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO

import pytest

from callpipe.log import CALL_TAG

logging.getLogger("callpipe").setLevel(logging.DEBUG)


# Tests marked `solo` measure timing (audio gaps, latency, floods) or load both cores; on two
# workers (`pytest -n 2`, the README's command) each of them runs while the other worker waits.
# A readers-writer lock across the workers' processes: every other test holds it shared, a solo
# test exclusively; the turnstile makes a waiting solo test go before the other worker's next
# test, so it is never starved.
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_locks: tuple[IO[bytes], IO[bytes]] | None = None


def _lock_files() -> tuple[IO[bytes], IO[bytes]]:
    global _locks
    if _locks is None:
        folder = Path(tempfile.gettempdir())
        turnstile = open(folder / f"callpipe-tests-{_RUN_ID}.turnstile", "ab")
        room = open(folder / f"callpipe-tests-{_RUN_ID}.room", "ab")
        _locks = (turnstile, room)
    return _locks


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    if _RUN_ID is None:
        yield
        return
    turnstile, room = _lock_files()
    solo = item.get_closest_marker("solo") is not None
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    fcntl.flock(room, fcntl.LOCK_EX if solo else fcntl.LOCK_SH)
    if not solo:
        fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(room, fcntl.LOCK_UN)
        if solo:
            fcntl.flock(turnstile, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _no_call_tag_from_an_earlier_test() -> Iterator[None]:
    """A transport built in a test's own context tags that context's log lines with its call;
    each test starts untagged, whatever ran before it."""
    token = CALL_TAG.set("")
    yield
    CALL_TAG.reset(token)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (a CA of its own): (cert file, key file), for
    fakes served over TLS (``serve_tls``) and clients told to trust it."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
