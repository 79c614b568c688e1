"""Where `amlbot serve` and its worker child keep their counters and histograms, so that serve's
/metrics shows the jobs the child runs: prometheus_client's multiprocess mode.

prometheus_client decides once, when it is first imported, whether a metric's values live in the
process's memory or in files under the directory `PROMETHEUS_MULTIPROC_DIR` names; `/metrics`
then sums every process's files (bot.metrics.renderer). So the directory is named in the
environment before anything imports prometheus_client (this module does not), and the child,
started later with that environment, inherits it. A fresh directory per serve is the empty one
the library asks for at start (stale files would add an earlier run's counts); it is removed when
serve ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def directory() -> str | None:
    """The shared directory, when this process keeps its metrics in files."""
    return os.environ.get(VARIABLE)


@contextlib.contextmanager
def shared() -> Iterator[str]:
    """A new, empty directory named in the environment while inside; removed on leaving."""
    with tempfile.TemporaryDirectory(prefix="amlbot-metrics-") as path:
        os.environ[VARIABLE] = path
        try:
            yield path
        finally:
            del os.environ[VARIABLE]
