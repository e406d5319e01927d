"""Random op graphs for the engine's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from workloads.ops import Op, OpGraph


@st.composite
def random_graphs(draw):
    """A random DAG of compute ops and copies, in a valid program order."""
    n = draw(st.integers(1, 25))
    g = OpGraph("random", 1, "train", "fp32")
    for i in range(n):
        kind = draw(st.sampled_from(["gemm", "elementwise", "copy"]))
        flops = draw(st.floats(0, 1e9)) if kind != "copy" else 0.0
        size = draw(st.floats(0, 1e8))
        preds = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        g.add(Op(f"op{i}", kind, "fwd", f"l{i}", flops, size, size / 2, "fp32", 1,
                 attrs=(("bytes_moved", size),)), [f"op{p}" for p in preds])
    return g
