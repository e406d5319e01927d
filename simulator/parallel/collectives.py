"""Collectives as plugins (registry `collective`): which bytes go from which device to which,
in what order. `simulator.parallel.comm_plan` turns them into engine transfers over a topology, so
link sharing and hierarchy (fast inside a node, slow between nodes) come out of the engine.

A collective is a list of phases; a phase repeats `steps` times a set of concurrent flows
(src device, dst device, bytes per step). A device's flows in one step start after the data
it received in the step before (ring and tree semantics). In a pipelined phase a flow that
also ran in the step before pays no latency: its chunk follows on the heels of the last.

Names are OPERATION or OPERATION_ALGORITHM. The library's collectives run as NCCL runs them
(`simulator.parallel.nccl`: NCCL's tuning model, src/graph/tuning.cc): each is an algorithm
(ring or tree) in a protocol (LL, LL128, Simple), with NCCL's base latency once, NCCL's hardware
latency per hop (by the class of link the hop crosses: NVLink, PCIe, network) and the
protocol's share of each link's bandwidth; the option `protocol: LL|LL128|Simple` forces one,
and otherwise the library takes, per size, the protocol (and for `allreduce` the algorithm) of
least predicted time, as NCCL does (`comm_plan` predicts each from the topology's links).
- `allreduce`: NCCL's automatic choice between `allreduce_ring` and `allreduce_tree` and among
  the three protocols, per message size (its phases, seen alone, are the ring's).
- `allreduce_ring`: ring. Inside one node (or with
  one device per node): reduce-scatter then all-gather around the ring, 2(n-1) steps of S/n.
  Over several nodes with m devices each: hierarchical ring (reduce-scatter inside each
  node, m-1 steps of S/m; ring all-reduce of the S/m shard across the nodes among devices of
  the same local rank, 2(N-1) steps of S/(mN); all-gather inside each node). Either way each
  device sends 2(n-1)/n * S.
- `allreduce_tree`: NCCL's pipelined double binary tree (src/graph/trees.cc, connect.cc).
  Inside a node the devices form a chain from a head; the heads of the N nodes form two
  complementary binary trees (the second the first mirrored, or shifted for odd N), so a
  node interior in one tree is a leaf in the other. Each tree carries S/2 (S/(2k) per
  channel with k NICs a node, channel j's chains headed by NIC j's device), cut into K
  chunks (NCCL's 512 KiB, smaller for small messages, at most TREE_MAX_CHUNKS). Chunk c goes
  up at step height + c and comes down mirrored, reduce and broadcast overlapping: 2H + K - 1
  steps for trees of height H = m - 1 + ~log2 N. Time ~ 2 H alpha + (1 + (2H - 1)/K) 2S/B:
  latency of 2 H hops (NCCL's tree latency model, tuning.cc), bandwidth 2S/B per device (a
  tree's busbw ~ the link's, against the ring's 2(n-1)/n S/B).
- `reducescatter`, `allgather`: ring, n-1 steps of S/n (S: the whole buffer).
- `broadcast`: binomial tree from rank 0, S per round (MPI's short-message algorithm).
- `p2p`: every rank sends S to the next one at once (nccl-tests' sendrecv).
- `ps_push`, `ps_pull`: workers send gradients to / fetch parameters from parameter-server
  shards; each worker's slice of the parameters goes to the shards that hold it. These are
  not the library's collectives: each step pays the links' own latency, at full bandwidth.
Reductions are taken as fused into the transfers (as NCCL's kernels do): no separate time.
Bus bandwidth factors follow nccl-tests (doc/PERFORMANCE.md).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware_models.topology import Topology
from simulator.core import plugins
from simulator.core.errors import UserError
from simulator.core.registry import Registry

Pair = tuple[int, int, float]  # (src device, dst device, bytes per step)
Parents = dict[int, int]  # device -> its parent in one tree (-1: the root)
Span = tuple[int, int, int, int]  # (first step, last step + 1, src device, dst device)


@dataclass(frozen=True)
class Phase:
    pairs: tuple[Pair, ...]
    steps: int = 1
    initiator: str = "src"  # whose comm stream runs a flow: the sender, or the receiver (pulls)
    pipelined: bool = False  # a pair that also ran in the step before pays no latency again
    # pipelined: the pairs whose stream of chunks starts here, and so pay their hop's latency
    # although they also ran in the step before (another tree's chunks); None: those that did not
    fresh: frozenset[tuple[int, int]] | None = None


@dataclass(frozen=True)
class Shape:
    """How a non-linear collective's phases of S bytes follow from the phases of `at` bytes
    (with `options`): every pair's bytes times S / `scale_at`, and the phase that starts at
    step `stretch_step` longer by `stretch` steps. Sizes of one shape share one analysis."""

    at: float
    scale_at: float
    options: tuple[tuple[str, Any], ...] = ()
    stretch_step: int = 0
    stretch: int = 0


@dataclass(frozen=True)
class Collective:
    name: str
    phases: Callable[..., list[Phase]]  # (group, topology, size_bytes, **options)
    bus_factor: Callable[[int], float]  # busbw = algbw * bus_factor(n)
    linear: bool = True  # the phases of S bytes are those of 1 byte scaled by S
    algorithm: str | None = "ring"  # NCCL's algorithm whose constants it takes (None: not NCCL's)
    choices: tuple[str, ...] = ()  # the library picks one of these per size (empty: itself)
    shape: Callable[..., Shape] | None = None  # non-linear: how its phases follow the size
    # pipelined collectives: (spans, bytes a step) whose span_phases are its phases
    spans: Callable[..., tuple[list[Span], float]] | None = None


collective: Registry[Collective] = plugins.collective


def _register(name: str, bus_factor: Callable[[int], float], aliases: tuple[str, ...] = (),
              linear: bool = True, algorithm: str | None = "ring",
              shape: Callable[..., Shape] | None = None,
              spans: Callable[..., tuple[list[Span], float]] | None = None,
              ) -> Callable[[Callable[..., list[Phase]]], Any]:
    """Register the decorated phase function as collective `name` (and under `aliases`)."""

    def add(fn: Callable[..., list[Phase]]) -> Callable[..., list[Phase]]:
        spec = Collective(name, fn, bus_factor, linear, algorithm, shape=shape, spans=spans)
        for alias in (name, *aliases):
            collective.add(alias, spec)
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


def _allreduce_bus_factor(n: int) -> float:
    return 2 * (n - 1) / n


@_register("allreduce_ring", _allreduce_bus_factor)
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


TREE_CHUNK_BYTES = 512 * 2**10  # NCCL's tree chunk (SIMPLE): NCCL_BUFFSIZE 4 MiB / NCCL_STEPS 8
TREE_MAX_CHUNKS = 256  # chunks per tree at most: larger messages get larger chunks



def btree_parent(n: int, rank: int) -> int:
    """NCCL's binary tree over ranks 0..n-1 (src/graph/trees.cc, ncclGetBtree): a rank's
    parent clears its lowest set bit and sets the next one (only clears it when that is out of
    range). Odd ranks are leaves; the root 0 has one child."""
    if rank == 0:
        return -1
    bit = rank & -rank
    up = (rank ^ bit) | (bit << 1)
    return up if up < n else rank ^ bit


def dtree_parents(n: int) -> tuple[list[int], list[int]]:
    """NCCL's double binary tree (ncclGetDtree): the second tree is the first mirrored
    (r -> n-1-r) when n is even, shifted by one rank when n is odd, so that a leaf of one tree
    is interior in the other (for odd n rank 0 is interior in both)."""
    if n % 2 == 0:
        there, back = (lambda r: n - 1 - r), (lambda r: n - 1 - r)
    else:
        there, back = (lambda r: (r - 1) % n), (lambda r: (r + 1) % n)
    first = [btree_parent(n, r) for r in range(n)]
    second = [-1 if (up := btree_parent(n, there(r))) < 0 else back(up) for r in range(n)]
    return first, second


def tree_chains(group: list[int], topo: Topology) -> list[list[list[int]]]:
    """Per channel, each node's devices as a chain from its head: NCCL's tree is a chain
    inside a node (src/graph/connect.cc). Over several nodes, one channel per NIC, channel k's
    chains starting at the first device of NIC k, so that the trees use every NIC."""
    nodes: dict[int, list[int]] = {}
    for dev in group:
        nodes.setdefault(topo.node_of(dev), []).append(dev)
    chains = list(nodes.values())
    count = topo.nics_per_node if len(chains) > 1 else 1
    return [[c[k * len(c) // count:] + c[:k * len(c) // count] for c in chains]
            for k in range(count)]


def channel_trees(chains: list[list[int]]) -> list[Parents]:
    """The two trees of one channel: the double binary tree over the nodes' heads, each head
    also the top of its node's chain (the chain is the same in both trees)."""
    trees = []
    for node_parents in dtree_parents(len(chains)):
        parents = {c[i]: c[i - 1] for c in chains for i in range(1, len(c))}
        for node, up in enumerate(node_parents):
            parents[chains[node][0]] = chains[up][0] if up >= 0 else -1
        trees.append(parents)
    return trees


def tree_heights(parents: Parents) -> dict[int, int]:
    """Every device's height in a tree: 0 for a leaf, 1 + its highest child's otherwise."""
    children: dict[int, list[int]] = {}
    for dev, up in parents.items():
        children.setdefault(up, []).append(dev)
    order = list(children[-1])
    for dev in order:  # breadth first from the root: the list grows as it is read
        order.extend(children.get(dev, []))
    height: dict[int, int] = {}
    for dev in reversed(order):
        height[dev] = 1 + max((height[c] for c in children.get(dev, [])), default=-1)
    return height


def tree_chunks(tree_bytes: float, depth: int, chunk_bytes: float | None = None) -> int:
    """How many chunks each tree's share is cut into. By default NCCL's (enqueue.cc): 512 KiB,
    halved while a tree gets fewer than 8 x depth chunks (down to 128 KiB), 4 x depth (64 KiB),
    depth (32 KiB). At most TREE_MAX_CHUNKS: the engine runs one step per chunk."""
    if chunk_bytes is not None and not chunk_bytes > 0:
        raise UserError(f"allreduce_tree: chunk_bytes must be positive, got {chunk_bytes!r}")
    if chunk_bytes is None:
        chunk_bytes = TREE_CHUNK_BYTES
        for per_level, floor_bytes in ((8, 128 * 2**10), (4, 64 * 2**10), (1, 32 * 2**10)):
            while tree_bytes / chunk_bytes < per_level * depth and chunk_bytes > floor_bytes:
                chunk_bytes /= 2
    return max(1, min(TREE_MAX_CHUNKS, math.ceil(tree_bytes / chunk_bytes)))


def pipeline_spans(parents: Parents, chunks: int,
                   height: dict[int, int] | None = None) -> list[Span]:
    """When each edge of a tree carries chunks: a device sends chunk c up at step height + c,
    once its children have sent it theirs; the root has the sum of chunk c after step
    top - 1 + c, and the broadcast mirrors the reduce: chunk c goes down to a device at step
    2 top - 1 - height + c, as late as still ends at the last step (reduce and broadcast
    overlap, as in NCCL's runTreeSplit). Steps then hold flows of one kind of hop (chains
    inside nodes, then hops between nodes), as a chunk's own path does. `height`: the tree's
    tree_heights, where the caller has them."""
    height = tree_heights(parents) if height is None else height
    top = max(height.values())
    spans = []
    for dev, up in parents.items():
        if up >= 0:
            down = 2 * top - 1 - height[dev]
            spans.append((height[dev], height[dev] + chunks, dev, up))
            spans.append((down, down + chunks, up, dev))
    return spans


def span_phases(spans: list[Span], bytes_per_step: float) -> list[Phase]:
    """Runs of steps with the same flows, each one pipelined phase. Two trees' flows between
    the same two devices stay two flows of one chunk each: flows of equal size are what the
    symmetric shortcut shares channels between best."""
    cuts = sorted({t for first, end, _, _ in spans for t in (first, end)})
    phases = []
    for start, end in itertools.pairwise(cuts):
        pairs = tuple((src, dst, bytes_per_step) for first, stop, src, dst in spans
                      if first <= start < stop)
        fresh = frozenset((src, dst) for first, _, src, dst in spans if first == start)
        if pairs:
            phases.append(Phase(pairs, end - start, pipelined=True, fresh=fresh))
    return phases


_TREES: dict[tuple[int, tuple[int, ...]], tuple[Topology, list[Parents], list[dict[int, int]]]] = {}
TREES_KEPT = 8  # the trees of the last few (topology, group): a step asks for them per bucket


def _trees(group: list[int], topo: Topology) -> tuple[list[Parents], list[dict[int, int]]]:
    """Every channel's two trees over `group` and each tree's heights (kept for reuse)."""
    key = (id(topo), tuple(group))
    hit = _TREES.get(key)
    if hit is None or hit[0] is not topo:
        trees = [tree for chains in tree_chains(group, topo) for tree in channel_trees(chains)]
        if len(_TREES) >= TREES_KEPT:
            del _TREES[next(iter(_TREES))]
        hit = _TREES[key] = (topo, trees, [tree_heights(tree) for tree in trees])
    return hit[1], hit[2]


def tree_shape(group: list[int], topo: Topology, size_bytes: float,
               chunk_bytes: float | None = None) -> Shape:
    """The tree's phases follow the size through its chunk count K alone: for one K they scale
    with the chunk's bytes, and from K = 2 x depth on (every span starts before the first
    ends) more chunks only lengthen the phase where all of them are in flight, the one
    starting at step 2 x depth - 1. So every size shares the analysis of min(K, 2 x depth)
    one-byte chunks."""
    trees, heights = _trees(group, topo)
    depth = max(max(h.values()) for h in heights)
    chunks = tree_chunks(size_bytes / len(trees), depth, chunk_bytes)
    base = min(chunks, 2 * depth)
    return Shape(base * len(trees), chunks * len(trees), (("chunk_bytes", 1.0),),
                 2 * depth - 1, chunks - base)


def tree_spans(group: list[int], topo: Topology, size_bytes: float,
               chunk_bytes: float | None = None) -> tuple[list[Span], float]:
    """Every tree edge's span of steps, and the bytes of one chunk (see tree_allreduce)."""
    trees, heights = _trees(group, topo)
    depth = max(max(h.values()) for h in heights)
    tree_bytes = size_bytes / len(trees)
    chunks = tree_chunks(tree_bytes, depth, chunk_bytes)
    spans = [span for tree, height in zip(trees, heights, strict=True)
             for span in pipeline_spans(tree, chunks, height)]
    return spans, tree_bytes / chunks


@_register("allreduce_tree", _allreduce_bus_factor, linear=False, algorithm="tree",
           shape=tree_shape, spans=tree_spans)
def tree_allreduce(group: list[int], topo: Topology, size_bytes: float,
                   chunk_bytes: float | None = None) -> list[Phase]:
    """NCCL's double binary tree, two trees a channel, each tree's share pipelined in chunks
    of `chunk_bytes` (default: NCCL's, see tree_chunks)."""
    return span_phases(*tree_spans(group, topo, size_bytes, chunk_bytes))


# NCCL's automatic all-reduce: its phases alone are the ring's; the planner chooses per size
collective.add("allreduce", Collective("allreduce", ring_allreduce, _allreduce_bus_factor,
                                       choices=("allreduce_ring", "allreduce_tree")))



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


@_register("ps_push", lambda n: 1.0, algorithm=None)
def ps_push(group: list[int], topo: Topology, size_bytes: float, servers: list[int] | None = None,
            slices: list[tuple[float, float]] | None = None) -> list[Phase]:
    workers, servers = _ps_split(group, servers)
    return [Phase(tuple(ps_pairs(workers, servers, size_bytes, slices)))]


@_register("ps_pull", lambda n: 1.0, algorithm=None)
def ps_pull(group: list[int], topo: Topology, size_bytes: float, servers: list[int] | None = None,
            slices: list[tuple[float, float]] | None = None) -> list[Phase]:
    workers, servers = _ps_split(group, servers)
    pairs = ps_pairs(workers, servers, size_bytes, slices)
    return [Phase(tuple((s, w, b) for w, s, b in pairs), initiator="dst")]
