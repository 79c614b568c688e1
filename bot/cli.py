"""`amlbot serve | worker | doctor | audit verify | show <id> | verify-receipt FILE | public-key | new-key`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot import keys, metric_files
from bot.logs import configure
from bot.settings import AppConfig, ConfigError, Settings, load_config
from commands.signing import Keyring, SigningKey

log = logging.getLogger("amlbot")

SLACK_HELP = """\
amlbot cannot start: {missing} not set.

  SLACK_BOT_TOKEN       the app's Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app →
                        OAuth & Permissions. Create the app from manifest.yml in this repository.
  SLACK_SIGNING_SECRET  api.slack.com/apps → your app → Basic Information → App Credentials.
  SLACK_APP_TOKEN       (Socket Mode instead of a public URL) an app-level token (xapp-…) with
                        connections:write: Basic Information → App-Level Tokens.

To try amlbot without any account first: `amlbot sandbox` (or `make run` with no Slack token).
"""

def _start(settings: Settings, command: str, supervised: bool = False) -> int:
    """`serve`: Slack's requests, with the worker (in a child process unless AMLBOT_WORKER=inline);
    `worker`: the worker alone."""
    missing = settings.missing_for_slack(requests=command == "serve")
    if missing:
        print(SLACK_HELP.format(missing=" and ".join(missing)), file=sys.stderr)
        return 2
    try:
        config = load_config(settings.amlbot_config)
    except ConfigError as error:
        print(f"amlbot cannot start: {error}", file=sys.stderr)
        return 2
    try:
        keyring = keys.for_serving(settings)
    except keys.KeyProblem as error:
        print(f"amlbot cannot start: {error}", file=sys.stderr)
        return 2
    if command == "serve" and settings.amlbot_worker == "process":
        with metric_files.shared():  # before prometheus_client's first import, here and in the child
            return _run(settings, config, keyring, command, supervised)
    return _run(settings, config, keyring, command, supervised)


def _run(settings: Settings, config: AppConfig, keyring: Keyring, command: str, supervised: bool) -> int:
    from bot.server import assemble, serve_http, serve_socket_mode, work

    bot = assemble(settings, config, keyring)
    if command == "worker":
        asyncio.run(work(bot, supervised))
    elif settings.slack_app_token:
        asyncio.run(serve_socket_mode(bot, settings.slack_app_token, settings.amlbot_host, settings.port))
    else:
        asyncio.run(serve_http(bot, settings.amlbot_host, settings.port))
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """The audit subcommands: they read, and never create a key or a database."""
    from bot.store.store import NoDatabase, Store

    if args.audit_command == "new-key":
        print(SigningKey.generate().pem(), end="")
        return 0
    try:
        if args.audit_command == "public-key":
            return _public_key(keys.configured(settings))
        keyring = Keyring() if args.audit_command == "show" else keys.for_checking(settings, args.public_key or [])
    except keys.KeyProblem as error:
        print(f"amlbot audit {args.audit_command}: {error}", file=sys.stderr)
        return 2
    if args.audit_command == "verify-receipt":
        return _verify_receipt(Path(args.file), keyring)
    try:
        store = Store.open_existing(settings.amlbot_database_url, keyring)
    except NoDatabase as error:
        print(f"amlbot audit {args.audit_command}: {error}", file=sys.stderr)
        return 2
    try:
        if args.audit_command == "verify":
            result = store.verify_audit()
            if result.ok:
                head = store.audit_head()
                shown = f"head {head.hash} (entry {head.seq})" if head else "no head yet"
                # The head, copied elsewhere, is what later shows a rollback of the whole database.
                print(f"audit log intact: {result.entries} entries, {shown} signed by key {result.signer}")
                return 0
            print(f"audit log BROKEN at entry {result.first_bad_seq}: {result.reason}")
            return 1
        entries = store.audit_entries(args.request_id)
        if not entries:
            print(f"no audit entries for {args.request_id}")
            return 1
        for entry in entries:
            print(f"{entry.seq:>6} {entry.at} {entry.actor:<12} {entry.event:<20} {entry.outcome:<12} {entry.detail}")
        return 0
    finally:
        store.close()


def _public_key(keyring: Keyring | None) -> int:
    if keyring is None or keyring.signing is None:
        print("amlbot audit public-key: no audit key here: set AMLBOT_AUDIT_KEY (or run where the bot's key file is)", file=sys.stderr)
        return 2
    public = keyring.signing.public
    print(public.text)
    print(f"key id {public.id}", file=sys.stderr)
    return 0


def _verify_receipt(path: Path, keyring: Keyring) -> int:
    from commands import receipts

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"cannot read {path}: {error}")
        return 2
    ok, message = receipts.verify(text, keyring)
    print(message)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amlbot", description="Export or delete Azure ML workspace data from Slack, safely.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot: Slack HTTP mode (or Socket Mode), /healthz and the job worker")
    worker = sub.add_parser("worker", help="run the job worker alone (no HTTP): it shares the database with `serve` replicas")
    worker.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # `serve`'s child: see bot/supervisor.py
    sub.add_parser("sandbox", help="try it with no accounts: the real bot, a Slack-like console on localhost, Azure stand-ins")
    doctor_parser = sub.add_parser("doctor", help="check the set-up (config, Slack, Azure, database): one line per check; exit 0 when all pass")
    doctor_parser.add_argument("--verbose", action="store_true", help="also show the Azure SDK's and amlbot's log lines as they happen")
    audit = sub.add_parser("audit", help="check the audit log and receipts")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the whole hash chain, its recorded breaks and its signed head")
    show = audit_sub.add_parser("show", help="print one request's history")
    show.add_argument("request_id")
    receipt = audit_sub.add_parser("verify-receipt", help="check a receipt file's signature")
    receipt.add_argument("file")
    for checker in (verify, receipt):
        checker.add_argument("--public-key", action="append", metavar="KEY",
                             help="a trusted public key (base64, or a PEM file); repeat for earlier keys. "
                                  "Default: the keys AMLBOT_AUDIT_KEY and AMLBOT_AUDIT_PREVIOUS_KEYS name")
    audit_sub.add_parser("public-key", help="print the public key that verifies receipts and the audit head")
    audit_sub.add_parser("new-key", help="print a new Ed25519 private key (PEM) for AMLBOT_AUDIT_KEY")
    args = parser.parse_args(argv)

    settings = Settings()
    configure(settings.amlbot_log_level, secrets=(settings.slack_bot_token, settings.slack_signing_secret,
                                                  settings.slack_app_token, settings.amlbot_audit_key))
    if args.command in ("serve", "worker"):
        return _start(settings, args.command, getattr(args, "supervised", False))
    if args.command == "sandbox":
        from sandbox.app import main as sandbox

        return sandbox(settings.port)
    if args.command == "doctor":
        from bot import doctor

        return doctor.main(settings, verbose=args.verbose)
    return _audit(settings, args)


if __name__ == "__main__":
    sys.exit(main())
