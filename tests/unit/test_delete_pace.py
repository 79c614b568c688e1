"""Which way a job's blobs are deleted (commands.operations.delete_pace), on a simulated service."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from commands.azure.door import DeleteMethod
from commands.operations.delete_pace import PROBE, REPROBE_AFTER, Pace, Sample, faster, next_part

BATCH, SINGLE = DeleteMethod.BATCH, DeleteMethod.SINGLE
STEP = 1024  # as run_data's checkpoint step: next_part is asked once per step and container, then again for what is left

Cost = Callable[[DeleteMethod, int], float]  # seconds a blob, by method and by how many were deleted before


def simulate(count: int, cost: Cost) -> tuple[list[tuple[DeleteMethod, int]], float]:
    """A job of `count` blobs run as delete_planned_blobs runs it, on a service whose per-blob cost is
    `cost`: the parts in order, and the seconds it took."""
    samples: list[Sample] = []
    parts: list[tuple[DeleteMethod, int]] = []
    done = 0
    for start in range(0, count, STEP):
        left = min(STEP, count - start)
        while left:
            method, n = next_part(samples, left)
            assert 0 < n <= left
            seconds = n * cost(method, done)
            samples.append(Sample(method, n, seconds))
            parts.append((method, n))
            done, left = done + n, left - n
    return parts, sum(s.seconds for s in samples)


def constant(batch: float, single: float) -> Cost:
    return lambda method, _done: batch if method is BATCH else single


def test_a_small_job_is_batches_only_and_is_never_timed_against_single_deletes() -> None:
    assert simulate(100, constant(1.0, 0.001))[0] == [(BATCH, 100)]
    # Fewer than PROBE left after the batches' probe: they go the faster known way, batches.
    assert simulate(PROBE + 44, constant(1.0, 0.001))[0] == [(BATCH, PROBE), (BATCH, 44)]


def test_on_azure_batches_are_timed_then_kept_and_single_deletes_cost_one_probe() -> None:
    # A batch is one round trip for 256 deletes: ~0.2 ms a blob against 2 ms for single requests.
    azure = constant(0.0002, 0.002)
    parts, seconds = simulate(10_000, azure)
    assert parts[:3] == [(BATCH, PROBE), (SINGLE, PROBE), (BATCH, STEP - 2 * PROBE)]
    assert sum(n for method, n in parts if method is SINGLE) == 2 * PROBE  # once at the start, once after REPROBE_AFTER
    assert seconds <= 10_000 * 0.0002 + 2 * PROBE * (0.002 - 0.0002) + 1e-9


def test_on_azurite_single_deletes_win_after_their_probe_and_batches_are_timed_again_later() -> None:
    # Azurite runs a batch's sub-requests one by one at more than a single delete's cost.
    azurite = constant(0.012, 0.004)
    parts, seconds = simulate(3000, azurite)
    assert parts == [(BATCH, PROBE), (SINGLE, PROBE), (SINGLE, STEP - 2 * PROBE), (SINGLE, STEP), (SINGLE, 3000 - 2 * STEP)]
    assert seconds == 3000 * 0.004 + PROBE * (0.012 - 0.004)
    parts, _ = simulate(20_000, azurite)
    batches = [(index, n) for index, (method, n) in enumerate(parts) if method is BATCH]
    assert len(batches) == 3 and all(n == PROBE for _, n in batches)  # the first probe, then every REPROBE_AFTER
    between = sum(n for method, n in parts[batches[0][0] + 1 : batches[1][0]] if method is SINGLE)
    assert REPROBE_AFTER <= between < REPROBE_AFTER + STEP


def test_a_service_that_slows_down_one_way_is_left_for_the_other_at_the_next_timing() -> None:
    # Batches are fast until the account starts throttling them after 5000 blobs.
    def cost(method: DeleteMethod, done: int) -> float:
        return 0.001 if method is SINGLE else 0.0002 if done < 5000 else 0.01

    parts, _ = simulate(20_000, cost)
    starts = list(itertools.accumulate((n for _, n in parts), initial=0))[:-1]
    switched = next(start for start, (method, _) in zip(starts, parts, strict=True) if start > 5000 and method is SINGLE)
    # The step that meets the throttling is timed slow, and from the next one on the blobs go singly.
    assert switched <= 5000 + 2 * STEP
    assert all(method is SINGLE for start, (method, n) in zip(starts, parts, strict=True) if start >= switched and n > PROBE)


def test_faster_is_batches_until_both_were_timed_and_on_a_tie() -> None:
    assert faster([]) is BATCH
    assert faster([Sample(BATCH, 256, 10.0)]) is BATCH  # slow, but single deletes were never timed
    assert faster([Sample(BATCH, 256, 1.0), Sample(SINGLE, 256, 1.0)]) is BATCH
    assert faster([Sample(BATCH, 256, 1.0), Sample(SINGLE, 512, 1.0)]) is SINGLE  # per blob, not per part
    # The latest timing of each counts: an earlier slow one is forgotten.
    assert faster([Sample(SINGLE, 256, 9.0), Sample(BATCH, 256, 2.0), Sample(SINGLE, 256, 1.0)]) is SINGLE


async def test_pace_times_each_part_on_its_clock() -> None:
    ticks = iter([10.0, 12.5, 20.0, 20.25])
    pace = Pace(clock=lambda: next(ticks))

    async def work(result: str) -> str:
        return result

    assert pace.next_part(1000) == (BATCH, PROBE)
    assert await pace.timed(BATCH, PROBE, work("first")) == "first"
    assert pace.next_part(744) == (SINGLE, PROBE)
    await pace.timed(SINGLE, PROBE, work("second"))
    assert pace.samples == [Sample(BATCH, PROBE, 2.5), Sample(SINGLE, PROBE, 0.25)]
    assert pace.next_part(488) == (SINGLE, 488)
