from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.store import Store
from commands.signing import Keyring, SigningKey
from tests.support.databases import postgres_database, postgres_skip_reason

AUDIT_KEY = Keyring(SigningKey.parse("test-audit-key"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        if url is None:
            pytest.skip(postgres_skip_reason() or "PostgreSQL unavailable")
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same store tests run on both databases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'amlbot.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = Store.open(url, AUDIT_KEY)
    if request.param == "postgresql":
        _truncate(opened)
    yield opened
    opened.close()


def _truncate(store: Store) -> None:
    from bot.store import schema

    with store.engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(table.delete())
