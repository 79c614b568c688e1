"""Which way a job's blobs are deleted: in blob batches or one request a blob, whichever the
storage service gets through faster, as timed on this job.

On Azure Storage a batch is one round trip for up to 256 deletes, so batches should win by far.
Azurite, the emulator, runs a batch's sub-requests one after another, each through its whole
request pipeline again, and there concurrent single requests are faster (bench/README.md). Nothing
in a connection string tells the two apart, and a proxy or a throttled account changes the
figures, so each method is timed on a slice of the job, the rest goes the faster way, and the
slower way is timed again after every REPROBE_AFTER blobs. The outcomes do not depend on the
method: every delete is conditional on its planned ETag either way.

Pure: `next_part` decides from the samples so far; `Pace` only keeps them and reads the clock.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from commands.azure.door import DeleteMethod

PROBE = 256  # blobs a method is timed on: one full batch, or 16 rounds of single deletes
REPROBE_AFTER = 8192  # blobs deleted the faster way before the slower way is timed again
ORDER = (DeleteMethod.BATCH, DeleteMethod.SINGLE)  # batches first: on Azure they win, and a small job is one batch

T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """`items` blobs deleted `method`'s way in `seconds`."""

    method: DeleteMethod
    items: int
    seconds: float

    @property
    def per_item(self) -> float:
        return self.seconds / self.items


def faster(samples: Sequence[Sample]) -> DeleteMethod:
    """The method whose latest timing is the faster per blob; batches until both were timed, and on a tie."""
    latest = {sample.method: sample.per_item for sample in samples if sample.items}
    if len(latest) < len(ORDER):
        return ORDER[0]
    return min(ORDER, key=lambda method: latest[method])


def next_part(samples: Sequence[Sample], left: int) -> tuple[DeleteMethod, int]:
    """The method and the number of the next blobs to delete (of `left`), timed on their own. A
    method never timed, or not for REPROBE_AFTER blobs, is timed on PROBE of them (batches
    first); otherwise, or when fewer are left, they all go the faster way."""
    if left >= PROBE:
        for method in ORDER:
            if _due(samples, method):
                return method, PROBE
    return faster(samples), left


def _due(samples: Sequence[Sample], method: DeleteMethod) -> bool:
    """Whether `method` is to be timed now: never timed, or only before REPROBE_AFTER blobs went the other way."""
    since = 0
    for sample in reversed(samples):
        if sample.method is method:
            return since >= REPROBE_AFTER
        since += sample.items
    return True


@dataclass
class Pace:
    """The timings of one job's deletes so far, and the clock they are read from."""

    clock: Callable[[], float] = time.perf_counter
    samples: list[Sample] = field(default_factory=list)

    def next_part(self, left: int) -> tuple[DeleteMethod, int]:
        return next_part(self.samples, left)

    async def timed(self, method: DeleteMethod, items: int, work: Awaitable[T]) -> T:
        started = self.clock()
        result = await work
        self.samples.append(Sample(method, items, self.clock() - started))
        return result
