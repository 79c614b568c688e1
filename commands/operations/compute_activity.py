"""What a compute is doing, read from its REST properties (pure; no Azure calls).

azure-ai-ml's `AmlCompute` entity drops the node counts and the allocation state; the resource's
REST body keeps them (`properties.properties`: `currentNodeCount`, `nodeStateCounts`,
`allocationState`, `allocationStateTransitionTime`). `modifiedOn` changes when someone edits the
compute's settings, not when it runs jobs, so it says nothing about idleness: the allocation state's
transition time does (a cluster that scales to zero changes allocation for every job it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Node states that mean a job holds the node, or is about to (nodeStateCounts keys).
_IN_USE = ("runningNodeCount", "preparingNodeCount")


@dataclass(frozen=True)
class ComputeActivity:
    compute_type: str  # AmlCompute, ComputeInstance, Kubernetes, VirtualMachine, …
    attached: bool  # brought in from elsewhere (isAttachedCompute): detached, never deleted
    nodes: int  # nodes allocated now (currentNodeCount)
    busy_nodes: int  # nodes running or preparing a job
    resizing: bool  # allocationState is not Steady: scaling up for queued work, or down
    since: datetime | None  # when the allocation last changed (allocationStateTransitionTime)

    @property
    def busy(self) -> bool:
        return self.busy_nodes > 0 or self.resizing

    def idle_since(self, cutoff: datetime) -> bool:
        """An AmlCompute cluster at zero nodes whose allocation has not changed since `cutoff`.
        Without a transition time nothing proves it idle, so it is not."""
        return (
            self.compute_type == "AmlCompute" and not self.attached and self.nodes == 0
            and not self.resizing and self.since is not None and self.since < cutoff
        )


def compute_activity(resource_properties: dict[str, Any]) -> ComputeActivity:
    """`resource_properties` is the compute resource's `properties` object as the REST API returns it."""
    inner = resource_properties.get("properties") or {}
    compute_type = str(resource_properties.get("computeType") or "")
    counts = inner.get("nodeStateCounts") or {}
    nodes = int(inner.get("currentNodeCount") or 0)
    # Without per-state counts, every allocated node may be in use.
    busy = sum(int(counts.get(key) or 0) for key in _IN_USE) if counts else nodes
    state = inner.get("allocationState")
    return ComputeActivity(
        compute_type=compute_type,
        attached=bool(resource_properties.get("isAttachedCompute")),
        nodes=nodes,
        busy_nodes=busy if compute_type == "AmlCompute" else 0,
        resizing=compute_type == "AmlCompute" and state is not None and str(state).lower() != "steady",
        since=_timestamp(inner.get("allocationStateTransitionTime")),
    )


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # the service writes UTC
