"""A pipeline policy that reports each HTTP try an Azure client makes, for the bot's metrics.

It sits after the retry policy, so every try counts. The bot supplies `observe`; this module keeps
the azure-core types on this side of the door.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

# (HTTP method, seconds the try took or None when unknown, failure: a 4xx/5xx status or an exception's name)
Observer = Callable[[str, float | None, str | None], None]


class CallPolicy(SansIOHTTPPolicy[Any, Any]):
    _STARTED = "amlbot.started"

    def __init__(self, observe: Observer) -> None:
        super().__init__()
        self.observe = observe

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context[self._STARTED] = time.perf_counter()

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        status = response.http_response.status_code
        self.observe(request.http_request.method, self._seconds(request), str(status) if status >= 400 else None)

    def on_exception(self, request: PipelineRequest[Any]) -> None:
        self.observe(request.http_request.method, self._seconds(request), type(sys.exc_info()[1]).__name__)

    def _seconds(self, request: PipelineRequest[Any]) -> float | None:
        started = request.context.get(self._STARTED)
        return None if started is None else time.perf_counter() - started
