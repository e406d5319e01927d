"""Collectives as plugins (registry `collective`): which bytes go from which device to which,
in what order. `simulator.parallel.comm_plan` turns them into engine transfers over a topology, so
link sharing and hierarchy (fast inside a node, slow between nodes) come out of the engine.

A collective is a list of phases; a phase repeats `steps` times a set of concurrent flows
(src device, dst device, bytes per step). A device's flows in one step start after the data
it received in the step before (ring and tree semantics).

- `allreduce`: ring. Inside one node (or with one device per node): reduce-scatter then
  all-gather around the ring, 2(n-1) steps of S/n. Over several nodes with m devices each:
  hierarchical ring (reduce-scatter inside each node, m-1 steps of S/m; ring all-reduce of
  the S/m shard across the nodes among devices of the same local rank, 2(N-1) steps of
  S/(mN); all-gather inside each node). Either way each device sends 2(n-1)/n * S.
- `allreduce_tree`: binomial tree reduce to rank 0 then binomial broadcast, whole message
  per round: latency-optimal (2 ceil(log2 n) rounds) but sends S every round. NCCL's
  pipelined double binary tree is not modelled.
- `reducescatter`, `allgather`: ring, n-1 steps of S/n (S: the whole buffer).
- `broadcast`: binomial tree from rank 0, S per round (MPI's short-message algorithm).
- `p2p`: every rank sends S to the next one at once (nccl-tests' sendrecv).
- `ps_push`, `ps_pull`: workers send gradients to / fetch parameters from parameter-server
  shards; each worker's slice of the parameters goes to the shards that hold it.
Reductions are taken as fused into the transfers (as NCCL's kernels do): no separate time.
Bus bandwidth factors follow nccl-tests (doc/PERFORMANCE.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware_models.topology import Topology
from simulator.core import plugins
from simulator.core.registry import Registry

Pair = tuple[int, int, float]  # (src device, dst device, bytes per step)


@dataclass(frozen=True)
class Phase:
    pairs: tuple[Pair, ...]
    steps: int = 1
    initiator: str = "src"  # whose comm stream runs a flow: the sender, or the receiver (pulls)


@dataclass(frozen=True)
class Collective:
    name: str
    phases: Callable[..., list[Phase]]  # (group, topology, size_bytes, **options)
    bus_factor: Callable[[int], float]  # busbw = algbw * bus_factor(n)


collective: Registry[Collective] = plugins.collective


def _register(name: str, bus_factor: Callable[[int], float]) -> Callable[[Callable[..., list[Phase]]], Any]:
    def add(fn: Callable[..., list[Phase]]) -> Callable[..., list[Phase]]:
        collective.add(name, Collective(name, fn, bus_factor))
        return fn

    return add


def ring_pairs(ranks: list[int], size_bytes: float) -> tuple[Pair, ...]:
    n = len(ranks)
    return tuple((ranks[i], ranks[(i + 1) % n], size_bytes) for i in range(n)) if n > 1 else ()


def by_node(group: list[int], topo: Topology) -> list[list[int]] | None:
    """The group's devices node by node, or None when nodes hold unequal numbers of them."""
    nodes: dict[int, list[int]] = {}
    for dev in group:
        nodes.setdefault(topo.node_of(dev), []).append(dev)
    sizes = {len(v) for v in nodes.values()}
    return list(nodes.values()) if len(sizes) == 1 else None


def _ring_phase(rings: list[list[int]], size_bytes: float, steps: int) -> list[Phase]:
    pairs = tuple(p for ring in rings for p in ring_pairs(ring, size_bytes))
    return [Phase(pairs, steps)] if pairs and steps > 0 else []


@_register("allreduce", lambda n: 2 * (n - 1) / n)
def ring_allreduce(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    nodes = by_node(group, topo)
    if nodes is None or len(nodes) == 1 or len(nodes[0]) == 1:
        n = len(group)
        return _ring_phase([group], size_bytes / n, 2 * (n - 1))
    count, m = len(nodes), len(nodes[0])
    inside = _ring_phase(nodes, size_bytes / m, m - 1)
    rails = [[node[local] for node in nodes] for local in range(m)]
    across = _ring_phase(rails, size_bytes / (m * count), 2 * (count - 1))
    return inside + across + inside


@_register("reducescatter", lambda n: (n - 1) / n)
def ring_reducescatter(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    return _ring_phase([group], size_bytes / len(group), len(group) - 1)


@_register("allgather", lambda n: (n - 1) / n)
def ring_allgather(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    return _ring_phase([group], size_bytes / len(group), len(group) - 1)


def binomial_rounds(group: list[int], size_bytes: float) -> list[Phase]:
    """Broadcast from group[0]: in round k every rank r < 2^k that has the data sends it on."""
    n, phases = len(group), []
    for k in range(math.ceil(math.log2(n)) if n > 1 else 0):
        span = 2 ** k
        pairs = tuple((group[r], group[r + span], size_bytes) for r in range(span) if r + span < n)
        phases.append(Phase(pairs))
    return phases


@_register("broadcast", lambda n: 1.0)
def tree_broadcast(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    return binomial_rounds(group, size_bytes)


@_register("allreduce_tree", lambda n: 2 * (n - 1) / n)
def tree_allreduce(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    down = binomial_rounds(group, size_bytes)
    up = [Phase(tuple((b, a, s) for a, b, s in ph.pairs)) for ph in reversed(down)]
    return up + down


@_register("p2p", lambda n: 1.0)
def sendrecv(group: list[int], topo: Topology, size_bytes: float) -> list[Phase]:
    return _ring_phase([group], size_bytes, 1)


def ps_pairs(workers: list[int], servers: list[int], size_bytes: float,
             slices: list[tuple[float, float]] | None) -> list[Pair]:
    """(worker, server, bytes): shard k holds [k/K, (k+1)/K) of the parameters; a worker
    holding the slice [lo, hi) exchanges with each shard the bytes of their overlap."""
    k = len(servers)
    pairs = []
    for i, worker in enumerate(workers):
        lo, hi = slices[i] if slices else (0.0, 1.0)
        for shard in range(math.floor(lo * k), min(k, math.ceil(hi * k))):
            overlap = min(hi, (shard + 1) / k) - max(lo, shard / k)
            if overlap > 0:
                pairs.append((worker, servers[shard], overlap * size_bytes))
    return pairs


def _ps_split(group: list[int], servers: list[int] | None) -> tuple[list[int], list[int]]:
    if servers is None:  # one server on the group's last device, the others are workers
        return group[:-1] or group, group[-1:]
    return group, servers


@_register("ps_push", lambda n: 1.0)
def ps_push(group: list[int], topo: Topology, size_bytes: float, servers: list[int] | None = None,
            slices: list[tuple[float, float]] | None = None) -> list[Phase]:
    workers, servers = _ps_split(group, servers)
    return [Phase(tuple(ps_pairs(workers, servers, size_bytes, slices)))]


@_register("ps_pull", lambda n: 1.0)
def ps_pull(group: list[int], topo: Topology, size_bytes: float, servers: list[int] | None = None,
            slices: list[tuple[float, float]] | None = None) -> list[Phase]:
    workers, servers = _ps_split(group, servers)
    pairs = ps_pairs(workers, servers, size_bytes, slices)
    return [Phase(tuple((s, w, b) for w, s, b in pairs), initiator="dst")]
