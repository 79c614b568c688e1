"""The first Azure ML call in a fresh process: importing azure-ai-ml, building MLClient, one list.

    python -m bench.mlclient_child ARM_ENDPOINT

Run with the stand-in's environment (its CA bundle). Prints one JSON line of seconds: `import`
(azure.ai.ml), `first_call` (MLClient built on first use by WorkspaceControl, then jobs.list read
to the end), `warm_call` (the same list again, the client built).
"""

from __future__ import annotations

import json
import sys
import time


def main(arm_endpoint: str) -> int:
    started = time.perf_counter()
    import azure.ai.ml  # noqa: F401  (the import itself is what is measured)

    imported = time.perf_counter()
    from commands.azure.config import WorkspaceConfig
    from commands.azure.control import WorkspaceControl
    from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential

    config = WorkspaceConfig(
        subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg-bench",
        workspace_name="mlw-bench", arm_endpoint=arm_endpoint,
    )
    control = WorkspaceControl(config, FakeCredential(), TEST_CLIENT_KWARGS)
    first = time.perf_counter()
    jobs = [job.name for job in control.ml().jobs.list()]
    warm = time.perf_counter()
    again = [job.name for job in control.ml().jobs.list()]
    done = time.perf_counter()
    assert jobs == again and jobs
    print(json.dumps({
        "import": imported - started, "first_call": warm - first, "warm_call": done - warm,
        "jobs": len(jobs),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
