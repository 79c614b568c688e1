"""Ed25519 keys, receipts and the audit chain's segments, pure; and the upgrade from HMAC keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot import audit
from bot.store import schema
from bot.store.store import Store
from commands import receipts
from commands.intents import Action
from commands.plan import canonical_json
from commands.signing import BadKey, Keyring, PublicKey, SigningKey

DOCUMENT = {"schema": receipts.SCHEMA, "request_id": "R-AAAAAAAA", "items": [{"ref": "a", "status": "deleted"}]}


def test_a_secret_derives_the_same_key_everywhere_and_a_pem_key_round_trips() -> None:
    assert SigningKey.parse("s3cret").public == SigningKey.parse(" s3cret\n").public
    assert SigningKey.parse("s3cret").public != SigningKey.parse("other").public
    key = SigningKey.generate()
    assert SigningKey.parse(key.pem()).public == key.public and SigningKey.parse(key.pem()).secret is None
    assert PublicKey.parse(key.public.text) == key.public
    assert PublicKey.parse(key.pem()) == key.public
    assert len(key.public.id) == 16 and key.public.id == hashlib.sha256(PublicKey.parse(key.public.text).key.public_bytes_raw()).hexdigest()[:16]


def test_the_readme_gives_the_sandbox_public_key_that_verifies_its_receipts() -> None:
    from pathlib import Path

    from sandbox.app import PUBLIC_KEY

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"verify-receipt --public-key {PUBLIC_KEY} R-XXXXXXXX-receipt.json" in readme


@pytest.mark.parametrize("text", ["", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"])
def test_a_bad_private_key_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(BadKey):
        SigningKey.parse(text)


@pytest.mark.parametrize("text", ["", "abc", "AAAA"])
def test_a_bad_public_key_is_refused_with_the_form_it_should_have(text: str) -> None:
    with pytest.raises(BadKey, match="base64 of 32 bytes"):
        PublicKey.parse(text)


def test_a_receipt_is_signed_over_canonical_json_and_checked_against_trusted_keys_only() -> None:
    key = SigningKey.generate()
    text = receipts.seal(DOCUMENT, key)
    block = json.loads(text)["signature"]
    assert set(block) == {"alg", "key_id", "public_key", "sig"} and block["alg"] == "Ed25519"
    assert key.public.verify(canonical_json(DOCUMENT), base64.b64decode(block["sig"]))
    assert receipts.verify(text, Keyring(None, (key.public,)))[0]
    ok, why = receipts.verify(text, Keyring(SigningKey.generate()))
    assert not ok and "not a key you trust" in why
    # The key id names a trusted key, but the block carries another public key.
    swapped = json.loads(text)
    swapped["signature"]["public_key"] = SigningKey.generate().public.text
    ok, why = receipts.verify(json.dumps(swapped), Keyring(None, (key.public,)))
    assert not ok and "carries another public key" in why


def test_a_receipt_of_an_earlier_version_verifies_with_its_hmac_secret_only() -> None:
    mac = "hmac-sha256:" + hmac.new(b"old-secret", canonical_json(DOCUMENT), hashlib.sha256).hexdigest()
    text = json.dumps(DOCUMENT | {"signature": mac})
    assert receipts.verify(text, Keyring(SigningKey.parse("old-secret")))[0]
    ok, why = receipts.verify(text, Keyring(None, (SigningKey.parse("old-secret").public,)))
    assert not ok and "AMLBOT_AUDIT_KEY set to that key" in why
    assert not receipts.verify(text, Keyring(SigningKey.parse("another")))[0]


def _request(store: Store) -> None:
    store.create_request(
        team_id="T1", channel_id="C1", requester="UREQ", text="delete run r1", action=Action.parse("delete run"), workspace="dev",
        intent={}, plan={"items": []}, plan_hash="sha256:x", approvals_required=1, expires_in=timedelta(hours=1),
    )


def test_an_hmac_signed_chain_of_an_earlier_version_is_carried_on_under_ed25519(store: Store) -> None:
    _request(store)
    _request(store)
    head = store.audit_head()
    assert head is not None
    # What an earlier version left: the same chain, its head signed with HMAC over "seq:hash".
    legacy = "hmac-sha256:" + hmac.new(b"test-audit-key", f"{head.seq}:{head.hash}".encode(), hashlib.sha256).hexdigest()
    with store.engine.begin() as conn:
        conn.execute(update(schema.audit_head).values(signature=legacy))
    assert store.verify_audit().ok and store.verify_audit().signer == audit.LEGACY_SIGNER
    store.audit(actor="UADM", event="freeze", outcome="ok")
    events = [e.event for e in store.audit_entries()]
    assert events[-2:] == [audit.ROTATED, "freeze"]
    result = store.verify_audit()
    assert result.ok and result.signer == store.keyring.signer().public.id
    # With another secret, that same HMAC head would have been a break, not a rotation.
    assert audit.head_signer(audit.Head(head.seq, head.hash, legacy), Keyring(SigningKey.parse("another"))) is None


def test_verify_names_each_recorded_break_and_freezes_the_segment_before_it(store: Store) -> None:
    _request(store)
    with store.engine.begin() as conn:
        conn.execute(update(schema.audit_head).values(signature="ed25519:0000000000000000:AAAA"))
    _request(store)  # finds the head unsigned: a new segment
    entries = store.audit_entries()
    assert [e.event for e in entries] == ["request.created", audit.BREAK, "request.created"]
    assert store.verify_audit().breaks == (2,) and store.audit_health().breaks == 1
    assert store.audit_health().head_problem is None  # the new segment's head is sound
    # Rewriting the first segment after the break was recorded is caught too.
    first = entries[0]
    forged = audit.entry_hash(**{k: v for k, v in first.__dict__.items() if k != "hash"} | {"actor": "UEVIL"})
    with store.engine.begin() as conn:
        conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == 1).values(actor="UEVIL", hash=forged))
    result = store.verify_audit()
    assert not result.ok and result.first_bad_seq == 2 and "changed after it recorded a break" in result.reason
