"""Receipts that cannot lie: the audit chain, the signing keys, forged requests, where the bot listens.

Each test plays the attacker (a database writer, a forger of receipts, a flood of unsigned posts)
against the real bot and checks what the store, the CLI and the probes say afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from bot import audit, cards, doctor, keys
from bot.cli import main as amlbot
from bot.lifecycle import State
from bot.settings import Settings
from bot.store import schema
from bot.store.db import transaction
from bot.store.store import Store
from commands.plan import canonical_json
from commands.signing import Keyring, PublicKey, SigningKey
from tests.e2e.harness import APPROVER_1, SIGNING_SECRET, STRANGER, Harness, base_config
from tests.support.bot_process import start_bot

AUDIT_KEY = "test-audit-key"  # what start_harness signs with
RUN = "churn_train_1700000000_audit001"
PREFIX = f"ExperimentRun/dcid.{RUN}/"

_PEM = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """`amlbot …` in an empty directory against the harness's database, with its audit key; returns
    (exit code, stdout and stderr)."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("AMLBOT_DATABASE_URL", str(harness.store.engine.url))
    monkeypatch.setenv("AMLBOT_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.delenv("AMLBOT_AUDIT_PREVIOUS_KEYS", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*argv: str) -> tuple[int, str]:
        code = amlbot(list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    yield run
    root.handlers[:] = handlers  # the CLI configures logging for a process of its own
    root.setLevel(level)
    assert os.listdir(workdir) == []  # no command left a key or a database where it ran


def _config_file(tmp_path: Path, connection: str) -> Path:
    config = tmp_path / "config.yml"
    raw = base_config(connection, "azureml-audit")
    raw["workspaces"]["dev"]["blobstore_container"] = "blobstore-audit"  # no control plane to ask
    config.write_text(yaml.safe_dump(raw))
    return config


def _serve_env(tmp_path: Path, connection: str, database: Path, **more: str) -> dict[str, str]:
    """What `amlbot serve` needs as a real process; no audit key unless given."""
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/", "AMLBOT_CONFIG": str(_config_file(tmp_path, connection)),
        "AMLBOT_DATABASE_URL": f"sqlite:///{database}", **more,
    }


# ---- AMLBOT_HOST ----------------------------------------------------------------------------------


async def test_the_bot_listens_on_the_one_interface_amlbot_host_names(tmp_path: Path, azurite_connection: str) -> None:
    # Linux routes all of 127/8 to the loopback: a second address on one host.
    env = _serve_env(tmp_path, azurite_connection, tmp_path / "amlbot.db", AMLBOT_HOST="127.0.0.2")
    bot = await start_bot(env, tmp_path / "serve.log")  # returns once http://127.0.0.2:PORT/healthz answers
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(f"http://127.0.0.1:{bot.port}/healthz")
    finally:
        await bot.stop()


# ---- the attacker with the database: verify before extending ----------------------------------------


def _rewrite(store: Store, seq: int, *, head_signature: str | None = None, **changes: Any) -> None:
    """What a database writer can do without the key: change an entry, recompute every unkeyed hash
    after it (and the head's), and keep the head's old signature or sign it with a key of their own.
    A writer like the bot's (`transaction`: the write lock from the start): a read that then writes
    fails at once on SQLite if the running bot commits in between."""
    with transaction(store.engine) as conn:
        log = schema.audit_log
        rows = [dict(r._mapping) for r in conn.execute(select(log).where(log.c.seq >= seq).order_by(log.c.seq))]
        prev = rows[0]["prev_hash"]
        for row in rows:
            row.update(changes if row["seq"] == seq else {}, prev_hash=prev)
            row["hash"] = prev = audit.entry_hash(**{k: v for k, v in row.items() if k != "hash"})
            conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == row["seq"]).values(**row))
        values: dict[str, Any] = {"hash": prev}
        if head_signature is not None:
            values["signature"] = head_signature
        conn.execute(update(schema.audit_head).values(**values))


def _own_key_signature(store: Store) -> str:
    head = store.audit_head()
    assert head is not None
    return audit.sign_head(head.seq, head.hash, SigningKey.generate())


async def _get(harness: Harness, path: str) -> tuple[int, str]:
    url = harness.sender.events_url.replace("/slack/events", path)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("signs_head", [False, True], ids=["keeps the old head signature", "signs the head with a key of their own"])
async def test_a_rewritten_chain_is_reported_and_never_signed_over(
    harness: Harness, signs_head: bool, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    created = next(e for e in harness.store.audit_entries() if e.event == "request.created")
    forged_text = json.loads(created.detail) | {"text": f"export run {RUN}"}  # the log now says it was only an export
    _rewrite(harness.store, created.seq, detail=audit.detail_text(forged_text),
             head_signature=_own_key_signature(harness.store) if signs_head else None)
    last_seq = harness.store.audit_entries()[-1].seq

    # Before any append, the probes already see it.
    status, body = await _get(harness, "/readyz")
    assert status == 200 and "audit chain: the head" in json.loads(body)["degraded"][0]

    # The next append (a signed request from someone outside the policy: refused, audited) must not
    # sign the forged head as if it were intact.
    await harness.command(f"delete run {RUN}", user=STRANGER)
    await harness.wait_reply(STRANGER, ":no_entry:")
    entries = harness.store.audit_entries()
    assert [e.event for e in entries[-2:]] == ["audit.chain_broken", "request.refused"]
    broken = entries[-2]
    assert broken.seq == last_seq + 1 and broken.prev_hash == audit.GENESIS  # a new segment
    assert "not signed by a trusted key" in json.loads(broken.detail)["reason"]

    result = harness.store.verify_audit()
    assert not result.ok and result.breaks == (broken.seq,)
    code, out = cli("audit", "verify")
    assert code == 1 and f"audit log BROKEN at entry {broken.seq}" in out

    status, body = await _get(harness, "/readyz")
    assert status == 200 and json.loads(body)["degraded"] == [
        f"audit chain: 1 break(s) recorded, the latest at entry {broken.seq}: run `amlbot audit verify` and see the README, Security"
    ]
    _, metrics_text = await _get(harness, "/metrics")
    assert "amlbot_audit_chain_breaks 1.0" in metrics_text and "amlbot_audit_head_sound 1.0" in metrics_text
    database, key_check = doctor.check_database(Settings(amlbot_database_url=str(harness.store.engine.url), amlbot_audit_key=AUDIT_KEY))
    assert database.ok and not key_check.ok and f"broken at entry {broken.seq}" in key_check.detail

    # The new segment stays signed: work goes on, and rewriting the break away is caught too.
    await harness.reject(request.id, APPROVER_1)
    assert harness.store.verify_audit().breaks == (broken.seq,)
    with harness.store.engine.begin() as conn:
        conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == 1).values(actor="UEVIL"))
    assert harness.store.verify_audit().first_bad_seq == 1


async def test_an_entry_altered_after_the_head_is_caught_at_the_next_append(harness: Harness) -> None:
    """The head's signature is intact, but the last entry no longer matches it."""
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    await harness.submit(f"export run {RUN}")
    last = harness.store.audit_entries()[-1]
    with harness.store.engine.begin() as conn:
        conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == last.seq).values(actor=STRANGER))
    await harness.command(f"delete run {RUN}", user=STRANGER)
    await harness.wait_reply(STRANGER, ":no_entry:")
    broken = harness.store.audit_entries()[-2]
    assert broken.event == "audit.chain_broken" and f"entry {last.seq} was altered" in json.loads(broken.detail)["reason"]
    assert not harness.store.verify_audit().ok


# ---- receipts anyone can verify ----------------------------------------------------------------------


async def _deleted_with_receipt(harness: Harness) -> tuple[str, bytes]:
    await harness.seed({f"{PREFIX}a.txt": b"a", f"{PREFIX}b.txt": b"b"})
    request = await harness.submit(f"delete run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED)
    [receipt] = await harness.slack.wait_for(
        lambda: [f for f in harness.slack.files if f.thread_ts == done.card_ts and f.filename.endswith("-receipt.json")]
    )
    return request.id, receipt.content


async def test_a_receipt_verifies_with_the_public_key_alone_and_a_re_signed_forgery_does_not(
    harness: Harness, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    request_id, content = await _deleted_with_receipt(harness)
    code, public = cli("audit", "public-key")
    public = public.splitlines()[0]
    assert code == 0
    document = json.loads(content)
    assert document["signature"]["alg"] == "Ed25519"
    assert document["signature"]["key_id"] == PublicKey.parse(public).id == audit.head_signer(harness.store.audit_head(), harness.store.keyring)

    # The auditor has the receipt and the public key, and nothing of the bot's.
    monkeypatch.delenv("AMLBOT_AUDIT_KEY")
    monkeypatch.setenv("AMLBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'no-such.db'}")
    receipt = tmp_path / f"{request_id}-receipt.json"
    receipt.write_bytes(content)
    code, out = cli("audit", "verify-receipt", "--public-key", public, str(receipt))
    assert code == 0 and f"receipt for {request_id} is intact (2 items)" in out
    key_file = tmp_path / "public.pem"
    key_file.write_text(PublicKey.parse(public).key.public_bytes(*_PEM).decode())
    assert cli("audit", "verify-receipt", "--public-key", str(key_file), str(receipt))[0] == 0

    # Whoever could verify receipts could forge them under HMAC; with Ed25519 they must use a key
    # of their own, and shipping it inside the receipt does not make it trusted.
    forged = json.loads(content)
    forged.pop("signature")
    forged["items"][0]["status"] = "already_absent"
    receipt.write_text(json.dumps(forged | {"signature": SigningKey.generate().signature(canonical_json(forged))}))
    code, out = cli("audit", "verify-receipt", "--public-key", public, str(receipt))
    assert code == 1 and "which is not a key you trust" in out
    # Nor does changing the content under the real signature.
    receipt.write_text(json.dumps(forged | {"signature": document["signature"]}))
    code, out = cli("audit", "verify-receipt", "--public-key", public, str(receipt))
    assert code == 1 and "altered after signing" in out
    # Without any key, the check says how to get one instead of making one up.
    code, out = cli("audit", "verify-receipt", str(receipt))
    assert code == 2 and "--public-key" in out and "amlbot audit public-key" in out
    assert not (tmp_path / "no-such.db").exists() and not (tmp_path / "amlbot-audit.key").exists()


async def test_after_a_key_rotation_old_receipts_and_the_chain_still_verify(
    harness: Harness, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    request_id, content = await _deleted_with_receipt(harness)
    code, old_public = cli("audit", "public-key")
    old_public = old_public.splitlines()[0]
    code, pem = cli("audit", "new-key")
    assert code == 0
    new_key = tmp_path / "new.pem"
    new_key.write_text(pem)
    monkeypatch.setenv("AMLBOT_AUDIT_KEY", str(new_key))
    monkeypatch.setenv("AMLBOT_AUDIT_PREVIOUS_KEYS", old_public)
    receipt = tmp_path / "r.json"
    receipt.write_bytes(content)
    assert cli("audit", "verify")[0] == 0  # the head is still signed by the old key, which is trusted
    assert cli("audit", "verify-receipt", str(receipt))[0] == 0
    # The bot restarted with the new key: its first entry records the rotation, then signs with the new key.
    harness.store.keyring = keys.configured(Settings())  # type: ignore[assignment]
    await harness.command(f"delete run {RUN}", user=STRANGER)
    await harness.wait_reply(STRANGER, ":no_entry:")
    rotated, refused = harness.store.audit_entries()[-2:]
    assert (rotated.event, refused.event) == ("audit.key_rotated", "request.refused")
    new_public = SigningKey.parse(new_key.read_text()).public
    assert json.loads(rotated.detail) == {
        "from_key_id": PublicKey.parse(old_public).id, "from_public_key": old_public,
        "to_key_id": new_public.id, "to_public_key": new_public.text,
    }
    code, out = cli("audit", "verify")
    head = harness.store.audit_head()
    assert code == 0 and f"head {head.hash} (entry {head.seq}) signed by key {new_public.id}" in out
    assert cli("audit", "verify-receipt", str(receipt))[0] == 0
    # Forgetting the earlier key is a clear failure, not a silent pass.
    monkeypatch.delenv("AMLBOT_AUDIT_PREVIOUS_KEYS")
    code, out = cli("audit", "verify-receipt", str(receipt))
    assert code == 1 and "not a key you trust" in out
    assert cli("audit", "verify-receipt", "--public-key", old_public, str(receipt))[0] == 0


# ---- one key for all replicas --------------------------------------------------------------------------


async def test_the_generated_key_lands_beside_the_sqlite_database_not_where_the_bot_runs(tmp_path: Path, azurite_connection: str) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    bot = await start_bot(_serve_env(tmp_path, azurite_connection, data / "amlbot.db"), run / "serve.log")  # its working directory is `run`
    await bot.stop()
    assert (data / "amlbot-audit.key").exists() and not (run / "amlbot-audit.key").exists()
    assert (data / "amlbot-audit.key").stat().st_mode & 0o077 == 0
    assert SigningKey.parse((data / "amlbot-audit.key").read_text()).secret is None  # a real Ed25519 key, in PEM


def test_postgresql_without_a_key_does_not_start_and_says_how_to_fix_it(
    tmp_path: Path, azurite_connection: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "AMLBOT_CONFIG": str(_config_file(tmp_path, azurite_connection)),
        "AMLBOT_DATABASE_URL": "postgresql://amlbot@127.0.0.1:1/amlbot",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AMLBOT_AUDIT_KEY", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert amlbot(["serve"]) == 2
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    error = capsys.readouterr().err
    assert "AMLBOT_AUDIT_KEY is not set: replicas sharing a PostgreSQL database must share one audit key" in error
    assert "amlbot audit new-key" in error
    assert os.listdir(tmp_path) == ["config.yml"]


def test_checking_never_creates_a_key_or_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMLBOT_AUDIT_KEY", raising=False)
    monkeypatch.delenv("AMLBOT_AUDIT_PREVIOUS_KEYS", raising=False)
    monkeypatch.setenv("AMLBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'amlbot.db'}")
    receipt = tmp_path / "r.json"
    receipt.write_text("{}")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert amlbot(["audit", "verify"]) == 2
        assert "no key to verify with" in capsys.readouterr().err
        assert amlbot(["audit", "verify-receipt", str(receipt)]) == 2
        assert "no key to verify with" in capsys.readouterr().err
        assert amlbot(["audit", "public-key"]) == 2
        monkeypatch.setenv("AMLBOT_AUDIT_KEY", AUDIT_KEY)
        assert amlbot(["audit", "verify"]) == 2
        assert f"no amlbot database at {tmp_path / 'amlbot.db'}" in capsys.readouterr().err
        assert amlbot(["audit", "show", "R-AAAAAAAA"]) == 2
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


# ---- forged requests stay cheap ----------------------------------------------------------------------


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("amlbot_slack_rejected_total", {"reason": reason}) or 0.0


async def test_a_flood_of_forged_posts_writes_no_row_each_and_is_audited_in_aggregate(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = harness.command_body(f"delete run {RUN}")
    now = int(time.time())
    forgeries = {
        "unsigned": {},
        "bad signature": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=" + "0" * 64},
        "stale": {"X-Slack-Request-Timestamp": str(now - 600), "X-Slack-Signature": "v0=" + "0" * 64},
    }
    before = {reason: _rejected(reason) for reason in forgeries}
    entries_before = len(harness.store.audit_entries())
    flood = 100

    async def post(session: aiohttp.ClientSession, headers: dict[str, str]) -> int:
        async with session.post(harness.sender.events_url, data=body + b"&padding=" + b"x" * 8000,
                                headers={"Content-Type": "application/x-www-form-urlencoded", **headers}) as response:
            return response.status

    with caplog.at_level(logging.WARNING, logger="bot.rejections"):
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(*(post(session, h) for h in forgeries.values() for _ in range(flood)))
    assert set(statuses) == {401}
    assert {reason: _rejected(reason) - before[reason] for reason in forgeries} == dict.fromkeys(forgeries, flood)
    # Not a row, nor a log line, per forgery: at most one of each per minute (a slow run may span two).
    assert len(harness.store.audit_entries()) - entries_before <= 1
    assert 1 <= len([r for r in caplog.records if r.name == "bot.rejections"]) <= 2

    await harness.bot.rejections.flush()  # what the server does once a minute, and at shutdown
    aggregates = harness.store.audit_entries()[entries_before:]
    details = [json.loads(entry.detail) for entry in aggregates]
    assert {entry.event for entry in aggregates} == {"signature.rejected"} and len(aggregates) <= 2
    assert sum(d["count"] for d in details) == 3 * flood
    assert sum((Counter(d["reasons"]) for d in details), Counter()) == dict.fromkeys(forgeries, flood)
    assert sum((Counter(d["sources"]) for d in details), Counter()) == {"127.0.0.1": 3 * flood}
    await harness.bot.rejections.flush()
    assert len(harness.store.audit_entries()) == entries_before + len(aggregates)  # nothing new to say
    assert harness.store.list_requests() == []
    assert harness.store.verify_audit().ok


def test_doctor_fails_a_postgresql_set_up_without_a_key(postgres_url: str) -> None:
    Store.open(postgres_url, Keyring(SigningKey.parse(AUDIT_KEY))).close()
    database, key_check = doctor.check_database(Settings(amlbot_database_url=postgres_url, amlbot_audit_key=None))
    assert database.ok and not key_check.ok
    assert "replicas sharing a PostgreSQL database must share one key" in key_check.detail
    assert "amlbot audit new-key" in key_check.fix
