"""A deletion's blobs go in batches or one request each, whichever the job times faster
(commands.operations.delete_pace); the receipt must be exact either way.

Each test drives the real app against Azurite through the fault proxy (tests/support/storage_proxy.py),
which makes one way slow, answers some deletes with errors, or loses an answer after Azurite acted.
Which way each blob went is read from the requests the proxy saw.
"""

from __future__ import annotations

import asyncio
import re

from bot import cards
from bot.lifecycle import State
from commands.operations.delete_pace import PROBE
from tests.e2e.harness import APPROVER_1, Harness
from tests.support.storage_proxy import StorageFaultProxy

RUN = "churn_train_1700000000_methods01"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
COUNT = 2 * PROBE + 88  # a batch probe, a probe of single deletes, then the rest the faster way
REST = 2 * PROBE  # the first blob of the rest, in plan order


def _name(index: int) -> str:
    return f"{PREFIX}logs/part-{index:04d}.txt"


def _statuses(receipt: dict[str, object]) -> dict[str, str]:
    return {item["ref"]: item["status"] for item in receipt["items"]}  # type: ignore[attr-defined, index]


def _singly(proxy: StorageFaultProxy, since: int) -> set[str]:
    """The blobs sent a DELETE of their own after the first `since` exchanges (answered by Azurite or by the proxy)."""
    deletes = [e for e in proxy.exchanges[since:] if e.method == "DELETE"]
    return {_name(int(m.group(1))) for e in deletes if (m := re.search(r"part-(\d{4})\.txt", e.path_qs))}


def _batches(proxy: StorageFaultProxy) -> list[int]:
    return [e.status for e in proxy.exchanges if e.method == "POST" and "comp=batch" in e.path_qs]


async def _planned(harness: Harness) -> str:
    await harness.seed({_name(i): f"line {i}\n".encode() for i in range(COUNT)})
    request = await harness.submit(f"delete run {RUN}")
    assert request.plan is not None and len(request.plan["items"]) == COUNT
    return request.id


async def test_batches_slow_here_single_deletes_take_the_rest_and_the_receipt_is_exact(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    request_id = await _planned(proxied)
    # After the plan, in each part (the batch probe, the singles probe, the rest) one blob is
    # rewritten and one deleted by someone else.
    rewritten = [_name(i) for i in (10, PROBE + 10, REST + 10)]
    gone = [_name(i) for i in (11, PROBE + 11, REST + 11)]
    await proxied.seed(dict.fromkeys(rewritten, b"new bytes, never approved"))
    container = proxied.blobs.get_container_client(proxied.container)
    await asyncio.gather(*(container.delete_blob(name) for name in gone))
    # Batch requests take 8 s more each: the single deletes' probe is the faster.
    proxy.slow("POST", r"comp=batch", 8.0)
    # Single deletes meet faults: busy twice (retried), an answer lost after Azurite deleted the
    # blob, and one failing past the retry budget (four tries: the storage SDK retries an error
    # status three times).
    busy, lost, broken = _name(PROBE + 20), _name(REST + 20), _name(REST + 30)
    proxy.fail_next("DELETE", re.escape(busy[-13:]), status=503, times=2)
    proxy.fail_next("DELETE", re.escape(lost[-13:]), status=500, forwarded=True)
    proxy.fail_next("DELETE", re.escape(broken[-13:]), status=500, times=4)

    approved = len(proxy.exchanges)
    await proxied.click(cards.ActionId.APPROVE, request_id, APPROVER_1)
    done = await proxied.wait_state(request_id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED, timeout=90)

    assert proxy.pending() == 0 and proxy.injected == 2 + 1 + 4
    assert _singly(proxy, approved) == {_name(i) for i in range(PROBE, COUNT)}  # the probe and the rest
    assert len(_batches(proxy)) == 4 and set(_batches(proxy)) == {202}  # the first PROBE blobs, four requests at once
    receipt = await proxied.receipt(request_id)
    statuses = _statuses(receipt)
    assert {name: statuses[name] for name in rewritten} == dict.fromkeys(rewritten, "changed")
    assert {name: statuses[name] for name in gone} == dict.fromkeys(gone, "already_absent")
    assert statuses[busy] == "deleted" and statuses[lost] == "already_absent" and statuses[broken] == "failed"
    failed = next(item for item in receipt["items"] if item["ref"] == broken)
    assert failed["reason"] == "OperationTimedOut" and failed["azure_request_id"]
    assert receipt["totals"] == {"deleted": COUNT - 8, "changed": 3, "already_absent": 4, "failed": 1}
    assert done.state is State.PARTIALLY_SUCCEEDED
    # What storage holds agrees: the rewritten blobs and the one that failed, nothing else.
    assert await proxied.blob_names(PREFIX) == {*rewritten, broken}


async def test_with_a_round_trip_on_every_request_batches_win_after_one_probe_of_single_deletes(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    """As on Azure: a batch is one round trip for its deletes, single requests one each."""
    request_id = await _planned(proxied)
    rewritten, gone = _name(REST + 5), _name(PROBE + 5)
    await proxied.seed({rewritten: b"new bytes, never approved"})
    await proxied.blobs.get_container_client(proxied.container).delete_blob(gone)
    proxy.slow("POST", r"comp=batch", 0.5)
    proxy.slow("DELETE", r"", 0.5)

    approved = len(proxy.exchanges)
    await proxied.click(cards.ActionId.APPROVE, request_id, APPROVER_1)
    await proxied.wait_state(request_id, State.PARTIALLY_SUCCEEDED, State.SUCCEEDED, State.FAILED, timeout=90)

    assert _singly(proxy, approved) == {_name(i) for i in range(PROBE, REST)}  # the probe only
    assert set(_batches(proxy)) == {202} and len(_batches(proxy)) == 4 + 2  # the first PROBE blobs, then 64 + 24
    receipt = await proxied.receipt(request_id)
    assert _statuses(receipt)[rewritten] == "changed" and _statuses(receipt)[gone] == "already_absent"
    assert receipt["totals"] == {"deleted": COUNT - 2, "changed": 1, "already_absent": 1}
    assert await proxied.blob_names(PREFIX) == {rewritten}
