"""The image: dependencies in their own layer before the code, from a hash-locked file that covers
pyproject's dependencies; the database and key on a volume."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_install_from_the_lock_before_the_code_is_copied() -> None:
    steps = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    lock = steps.index("COPY requirements.lock ./")
    install = next(i for i, s in enumerate(steps) if s.startswith("RUN pip install --require-hashes") and "requirements.lock" in s)
    code = min(i for i, s in enumerate(steps) if s.startswith("COPY") and ("bot" in s or "pyproject" in s))
    assert lock < install < code  # a code change does not reinstall the dependencies
    assert "VOLUME /data" in steps


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==\S+ \\$", text, re.M)}
    wanted = {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert wanted <= pinned, wanted - pinned
    entries = re.split(r"\n(?=[A-Za-z])", text.split("\n\n", 1)[1])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
    assert "/opt/" not in text and "/work/" not in text and "--find-links" not in text  # no machine paths
