"""Ed25519 signatures: what receipts and the audit head are signed with, and how they are checked.

A signature names its key by id (the first 16 hex digits of the SHA-256 of the raw public key), so
whoever holds the public key can check it offline, and nobody who can check one can make one.
A keyring is the key that signs now plus the public keys of earlier keys: what they signed still
verifies after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG = "Ed25519"
# A key of earlier versions was an HMAC secret: the Ed25519 key is derived from it (domain-separated),
# so a deployment keeps its AMLBOT_AUDIT_KEY, and that secret still verifies what it signed before.
_DERIVATION = b"amlbot audit ed25519 key v1\x00"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class BadKey(ValueError):
    """A key that cannot be used; the message says what it should look like."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey

    @property
    def text(self) -> str:
        """Base64 of the 32 raw bytes: what `amlbot audit public-key` prints."""
        return _b64(self.key.public_bytes(*_RAW))

    @property
    def id(self) -> str:
        return hashlib.sha256(self.key.public_bytes(*_RAW)).hexdigest()[:16]

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Base64 of the raw 32 bytes, or a PEM public key (or a PEM private key: its public half)."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            if "PRIVATE KEY" in text:
                return SigningKey.parse(text).public
            try:
                key = serialization.load_pem_public_key(text.encode())
            except ValueError as error:
                raise BadKey(f"not a PEM public key: {error}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise BadKey(f"an Ed25519 public key is needed, not {type(key).__name__}")
            return cls(key)
        raw = _unb64(text)
        if raw is None or len(raw) != 32:
            raise BadKey("a public key is base64 of 32 bytes (as `amlbot audit public-key` prints it) or a PEM file")
        return cls(Ed25519PublicKey.from_public_bytes(raw))


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    secret: bytes | None = None  # the HMAC secret this key was derived from (a key of earlier versions)

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def signature(self, message: bytes) -> dict[str, str]:
        """The self-describing signature block of a receipt."""
        public = self.public
        return {"alg": ALG, "key_id": public.id, "public_key": public.text, "sig": _b64(self.sign(message))}

    def pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """A PEM (PKCS#8) Ed25519 private key; any other text is a secret the key is derived from."""
        stripped = text.strip()
        if not stripped:
            raise BadKey("the audit key is empty")
        if not stripped.startswith("-----BEGIN"):
            secret = stripped.encode()
            seed = hashlib.sha256(_DERIVATION + secret).digest()
            return cls(Ed25519PrivateKey.from_private_bytes(seed), secret)
        try:
            key = serialization.load_pem_private_key(stripped.encode(), password=None)
        except (ValueError, TypeError) as error:
            raise BadKey(f"not an unencrypted PEM private key: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise BadKey(f"an Ed25519 private key is needed, not {type(key).__name__} (`amlbot audit new-key` makes one)")
        return cls(key)


def legacy_mac(message: bytes, secret: bytes) -> str:
    """The HMAC-SHA256 signatures of earlier versions, checked with the secret that made them."""
    return "hmac-sha256:" + hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Keyring:
    """The key that signs now (None where only checking happens) and the public keys trusted besides."""

    signing: SigningKey | None = None
    previous: tuple[PublicKey, ...] = ()
    trusted: dict[str, PublicKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = ([self.signing.public] if self.signing else []) + list(self.previous)
        object.__setattr__(self, "trusted", {key.id: key for key in keys})

    def signer(self) -> SigningKey:
        if self.signing is None:
            raise BadKey("no private key: this keyring only verifies")
        return self.signing

    def check_block(self, message: bytes, block: Any) -> tuple[bool, str]:
        """(valid, why): a receipt's signature block, against the trusted keys only (never the key
        the block carries: anyone can sign with a key of their own and ship it along)."""
        if not isinstance(block, dict) or block.get("alg") != ALG or not isinstance(block.get("sig"), str):
            return False, f"the signature is not an {ALG} signature block"
        key = self.trusted.get(str(block.get("key_id")))
        if key is None:
            return False, f"signed by key {block.get('key_id')}, which is not a key you trust (trusted: {', '.join(self.trusted) or 'none'})"
        if block.get("public_key") not in (None, key.text):
            return False, f"the signature names key {key.id} but carries another public key"
        raw = _unb64(block["sig"])
        if raw is None or not key.verify(message, raw):
            return False, "the signature does not match: the content was altered after signing"
        return True, f"key {key.id}"

    def check_legacy(self, message: bytes, mac: str) -> tuple[bool, str]:
        """(valid, why) for an HMAC signature of earlier versions: only the secret that made it can tell."""
        secret = self.signing.secret if self.signing else None
        if secret is None:
            return False, "signed with the shared HMAC key of an earlier version: verify it with AMLBOT_AUDIT_KEY set to that key"
        if not hmac.compare_digest(legacy_mac(message, secret), mac):
            return False, "the HMAC signature does not match: the content was altered, or AMLBOT_AUDIT_KEY is not the key that signed it"
        return True, "the shared HMAC key of an earlier version"
