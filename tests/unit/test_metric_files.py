"""prometheus_client's multiprocess mode for `amlbot serve` and its worker child (bot/metric_files.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot import metric_files


def test_the_shared_directory_is_new_and_empty_named_while_inside_and_removed_after() -> None:
    with metric_files.shared() as path:
        assert os.environ[metric_files.VARIABLE] == path == metric_files.directory()
        assert Path(path).is_dir() and not any(Path(path).iterdir())
        (Path(path) / "counter_1.db").write_bytes(b"\0" * 8)
    assert metric_files.directory() is None and not Path(path).exists()


def test_the_cli_imports_no_prometheus_client_before_serve_names_the_directory() -> None:
    """prometheus_client picks memory or files when first imported: were it imported with bot.cli,
    serve's own counters would stay in memory, out of the files its /metrics sums."""
    code = "import sys, bot.cli; print('prometheus_client' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(root)})
    assert shown.stdout.strip() == "False"
