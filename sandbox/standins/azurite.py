"""Azurite, the real Azure Storage emulator, started on a free port.

Azurite is a Node.js program, not a Python package, so the wheel cannot bring it. It is found as
``$AMLBOT_AZURITE`` (the path of an ``azurite-blob`` executable), else the ``node_modules`` of a
checkout (``npm ci`` installs the version package-lock.json pins), else ``azurite-blob`` on PATH
(``npm install -g azurite``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENVIRONMENT_VARIABLE = "AMLBOT_AZURITE"
CHECKOUT_AZURITE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key: not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteUnavailable(RuntimeError):
    """Azurite is not installed, or did not start."""


def azurite_executable() -> Path:
    """Where ``azurite-blob`` is; AzuriteUnavailable says how to get it."""
    named = os.environ.get(ENVIRONMENT_VARIABLE)
    if named:
        if not os.access(named, os.X_OK):
            raise AzuriteUnavailable(f"{ENVIRONMENT_VARIABLE}={named} is not an executable azurite-blob")
        return Path(named)
    if CHECKOUT_AZURITE.exists():
        return CHECKOUT_AZURITE
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    raise AzuriteUnavailable(
        "Azurite, the Azure Storage emulator, is missing: install it with `npm install -g azurite` "
        f"(it needs Node.js 22 or later), or set {ENVIRONMENT_VARIABLE} to the path of its azurite-blob; "
        "in a checkout, `make run` installs it"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@contextmanager
def azurite() -> Iterator[str]:
    """Yields a connection string to a fresh in-memory Azurite blob service."""
    executable = azurite_executable()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [str(executable), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AzuriteUnavailable(f"Azurite did not start: {process.stderr.read().decode() if process.stderr else ''}") from None
                    time.sleep(0.1)
            yield connection_string(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
