"""The ack load, sent and timed in a process of its own.

    python -m bench.load_child < SPEC.json

SPEC: targets (each: events_url, request_id, card_ts, response_urls, one per delivery), rate,
seconds, bursts, burst_size. Prints one JSON line: each target's samples (phase, sent at (epoch),
seconds, HTTP status) and the seconds the counted load took. Apart from the bench's process, where the Slack stand-in takes the
bot's replies and progress updates, so that serving them never delays the reading of an ack (the
bare app sends none: timing in that process flattered it).
"""

from __future__ import annotations

import asyncio
import json
import sys

from bench.ack import Load, Target


async def main() -> None:
    spec = json.loads(sys.stdin.read())
    targets = [Target(t["events_url"], iter(t["response_urls"]), t["request_id"], t["card_ts"]) for t in spec["targets"]]
    window = await Load(targets).drive(spec["rate"], spec["seconds"], spec["bursts"], spec["burst_size"])
    print(json.dumps({"samples": [t.samples for t in targets], "window_s": window}))


if __name__ == "__main__":
    asyncio.run(main())
