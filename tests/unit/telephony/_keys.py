"""A throwaway RSA key, as Vonage applications hold one to sign their REST JWTs."""

from __future__ import annotations


def rsa_private_pem() -> str:
    """A fresh 2048-bit RSA private key, PKCS#8 PEM (what ``VONAGE_PRIVATE_KEY`` carries)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
