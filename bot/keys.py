"""Where the audit key comes from: AMLBOT_AUDIT_KEY, or a key generated beside the SQLite database.

AMLBOT_AUDIT_KEY is an Ed25519 private key in PEM (`amlbot audit new-key` prints one), an absolute
path to a file holding one, or any other secret text, from which the key is derived (so the HMAC
keys of earlier versions keep working, and still verify what they signed). AMLBOT_AUDIT_PREVIOUS_KEYS
lists the public keys of earlier keys (comma-separated): what they signed still verifies.
Several replicas must share one key, so on PostgreSQL a missing key stops the start; only a local
SQLite database gets a generated key, in a file beside it. Checking (`amlbot audit verify`,
`verify-receipt`, `doctor`) never creates one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bot.settings import Settings
from bot.store.db import sqlite_file
from commands.signing import BadKey, Keyring, PublicKey, SigningKey

log = logging.getLogger(__name__)

KEY_FILE = "amlbot-audit.key"
NEW_KEY_FIX = (
    "make one with `amlbot audit new-key > /secure/place/amlbot-audit.pem`, and set AMLBOT_AUDIT_KEY to that path "
    "(or to the PEM text) on every replica"
)


class KeyProblem(Exception):
    """No usable audit key; the message says what is wrong and how to fix it."""


def generated_key_path(settings: Settings) -> Path | None:
    """Beside the SQLite database (never wherever the process happens to run); None for PostgreSQL."""
    file = sqlite_file(settings.amlbot_database_url)
    return file.parent / KEY_FILE if file is not None else None


def _signing_key(text: str, source: str) -> SigningKey:
    try:
        return SigningKey.parse(text)
    except BadKey as error:
        raise KeyProblem(f"{source}: {error}") from None


def _from_setting(value: str) -> SigningKey:
    if value.startswith("/"):
        path = Path(value)
        try:
            return _signing_key(path.read_text(), str(path))
        except OSError as error:
            raise KeyProblem(f"AMLBOT_AUDIT_KEY names the key file {path}, which cannot be read: {error.strerror}") from None
    return _signing_key(value, "AMLBOT_AUDIT_KEY")


def _previous(settings: Settings) -> tuple[PublicKey, ...]:
    texts = (settings.amlbot_audit_previous_keys or "").replace(",", " ").split()
    try:
        return tuple(PublicKey.parse(text) for text in texts)
    except BadKey as error:
        raise KeyProblem(f"AMLBOT_AUDIT_PREVIOUS_KEYS: {error}") from None


def configured(settings: Settings) -> Keyring | None:
    """The keyring the settings name, or the key generated beside the database; None when neither
    exists. Never creates anything."""
    previous = _previous(settings)
    if settings.amlbot_audit_key:
        return Keyring(_from_setting(settings.amlbot_audit_key), previous)
    path = generated_key_path(settings)
    if path is not None and path.exists():
        return Keyring(_signing_key(path.read_text(), str(path)), previous)
    return None


def for_serving(settings: Settings) -> Keyring:
    """The keyring `serve` and `worker` sign with: configured, else generated beside SQLite."""
    keyring = configured(settings)
    if keyring is not None:
        return keyring
    path = generated_key_path(settings)
    if path is None:
        raise KeyProblem(f"AMLBOT_AUDIT_KEY is not set: replicas sharing a PostgreSQL database must share one audit key; {NEW_KEY_FIX}")
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: if another process made one meanwhile, that one is the key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Keyring(_signing_key(path.read_text(), str(path)), _previous(settings))
    with os.fdopen(descriptor, "w") as file:
        file.write(key.pem())
    log.warning("AMLBOT_AUDIT_KEY is not set: generated an audit key beside the database; set the variable for production",
                extra={"path": str(path), "key_id": key.public.id})
    return Keyring(key, _previous(settings))


def for_checking(settings: Settings, public_keys: list[str]) -> Keyring:
    """The keys to verify with: those given (public keys alone suffice), else the configured ones."""
    if public_keys:
        try:
            parsed = [PublicKey.parse(_read_if_path(text)) for text in public_keys]
        except BadKey as error:
            raise KeyProblem(f"--public-key: {error}") from None
        return Keyring(None, tuple(parsed))
    keyring = configured(settings)
    if keyring is None:
        where = generated_key_path(settings)
        raise KeyProblem(
            "no key to verify with: pass --public-key (`amlbot audit public-key` prints it where the bot runs), "
            f"or set AMLBOT_AUDIT_KEY{f' (no key file at {where} either)' if where else ''}"
        )
    return keyring


def _read_if_path(text: str) -> str:
    path = Path(text)
    if not text.startswith("-----BEGIN") and path.is_file():
        try:
            return path.read_text()
        except OSError as error:
            raise KeyProblem(f"--public-key {path}: {error.strerror}") from None
    return text
