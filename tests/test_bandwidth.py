"""Links shared in the engine: fair shares, recomputed when a transfer starts or ends."""

from __future__ import annotations

import pytest
import simpy

from hardware_models.ideal import IdealDevice
from simulator.engine.bandwidth import Network
from simulator.engine.loop import simulate
from simulator.engine.plan import Flow, Plan, Transfer, comm_task

GB = 1e9


def _plan(transfers: list[tuple[str, list[Flow], tuple[str, ...]]],
          links: dict[str, float]) -> Plan:
    """Each transfer on a device of its own, so that only the links make them wait."""
    plan = Plan(devices=[IdealDevice() for _ in transfers], links=links)
    for i, (name, flows, preds) in enumerate(transfers):
        plan.add(comm_task(name, i, Transfer(tuple(flows)), preds))
    return plan


def _ends(plan: Plan) -> dict[str, float]:
    return {s.name: s.end_s for s in simulate(plan).spans}


def test_one_transfer_alone_takes_latency_plus_size_over_bandwidth():
    flow = Flow((("a", 1.0),), 2 * GB, 1e-6)
    assert _ends(_plan([("t", [flow], ())], {"a": GB}))["t"] == pytest.approx(2.0 + 1e-6)


def test_two_transfers_sharing_one_link_each_take_twice_as_long():
    flow = Flow((("a", 1.0),), GB, 0.0)
    alone = _ends(_plan([("t0", [flow], ())], {"a": GB}))["t0"]
    both = _ends(_plan([("t0", [flow], ()), ("t1", [flow], ())], {"a": GB}))
    assert both["t0"] == pytest.approx(2 * alone) and both["t1"] == pytest.approx(2 * alone)


def test_transfers_on_different_links_do_not_interfere():
    ends = _ends(_plan([("t0", [Flow((("a", 1.0),), GB, 0.0)], ()),
                        ("t1", [Flow((("b", 1.0),), GB, 0.0)], ())], {"a": GB, "b": GB}))
    assert ends == {"t0": pytest.approx(1.0), "t1": pytest.approx(1.0)}


def test_an_end_changes_the_shares_of_flows_connected_through_others():
    # x on a; y on a and b; z, w on b (10 B/s each). b fills first: y, z, w at 10/3, x at
    # 20/3. w ends at 3 s; then y, z share b at 5, and y leaves x 5 on a, although x shares
    # no channel with w: x's other 80 B take 16 s more (at 20/3 they would take 12)
    flows = {"x": [("a", 1.0)], "y": [("a", 1.0), ("b", 1.0)], "z": [("b", 1.0)],
             "w": [("b", 1.0)]}
    sizes = {"x": 100.0, "y": 1000.0, "z": 1000.0, "w": 10.0}
    ends = _ends(_plan([(n, [Flow(tuple(h), sizes[n], 0.0)], ()) for n, h in flows.items()],
                       {"a": 10.0, "b": 10.0}))
    assert ends["w"] == pytest.approx(3.0) and ends["x"] == pytest.approx(19.0)


def test_share_is_recomputed_when_a_transfer_ends():
    # 1 GB and 3 GB on one 1 GB/s link: both at 0.5 GB/s until 2 s, then the big one alone
    ends = _ends(_plan([("small", [Flow((("a", 1.0),), GB, 0.0)], ()),
                        ("big", [Flow((("a", 1.0),), 3 * GB, 0.0)], ())], {"a": GB}))
    assert ends["small"] == pytest.approx(2.0) and ends["big"] == pytest.approx(4.0)


def test_share_is_recomputed_when_a_transfer_starts():
    # the second transfer starts at 1 s (after a 1 s transfer on its own link)
    ends = _ends(_plan([("first", [Flow((("a", 1.0),), 2 * GB, 0.0)], ()),
                        ("lead", [Flow((("b", 1.0),), GB, 0.0)], ()),
                        ("late", [Flow((("a", 1.0),), GB, 0.0)], ("lead",))],
                       {"a": GB, "b": GB}))
    # 'first' moves 1 GB alone, then shares: 1 GB left at 0.5 GB/s -> 3 s; 'late' ends with it
    assert ends["first"] == pytest.approx(3.0) and ends["late"] == pytest.approx(3.0)


def test_max_min_fairness_gives_unused_share_to_the_other_flow():
    # x crosses a (1 GB/s) and b (0.25 GB/s); y crosses a only. x is held to 0.25 by b, so
    # y gets the rest of a (0.75), not half of it.
    x = Flow((("a", 1.0), ("b", 1.0)), 0.25 * GB, 0.0)
    y = Flow((("a", 1.0),), 0.75 * GB, 0.0)
    ends = _ends(_plan([("x", [x], ()), ("y", [y], ())], {"a": GB, "b": 0.25 * GB}))
    assert ends["x"] == pytest.approx(1.0) and ends["y"] == pytest.approx(1.0)


def test_a_load_of_k_is_k_identical_flows():
    ghosts = _ends(_plan([("t", [Flow((("a", 4.0),), GB, 0.0)], ())], {"a": GB}))["t"]
    real = _ends(_plan([(f"t{i}", [Flow((("a", 1.0),), GB, 0.0)], ()) for i in range(4)],
                       {"a": GB}))
    assert ghosts == pytest.approx(4.0) and max(real.values()) == pytest.approx(ghosts)


def test_link_records_conserve_bytes_and_durations():
    plan = _plan([("t0", [Flow((("a", 1.0), ("b", 1.0)), GB, 0.0)], ())], {"a": GB, "b": GB})
    trace = simulate(plan)
    assert [(r.channel, r.size_bytes, r.end_s) for r in trace.links] == [
        ("a", GB, pytest.approx(1.0)), ("b", GB, pytest.approx(1.0))]


def test_a_flow_shorter_than_the_clock_resolution_still_ends():
    # regression: 1e18 B/s links late in a run left flows whose remaining time was below
    # the float resolution of the clock, and the timer fired forever without progress
    late = Flow((("b", 1.0),), 1e9, 0.0)
    fast = Flow((("a", 1.0),), 1234.5, 1e-15)
    ends = _ends(_plan([("late", [late], ()), ("fast", [fast], ("late",)),
                        ("fast2", [fast], ("late",))], {"a": 1e18, "b": 1e9}))
    assert ends["fast"] == pytest.approx(1.0 + 2 * 1234.5 / 1e18, rel=1e-12)


def test_a_flow_joining_when_another_finishes_is_not_a_division_by_zero():
    """Regression: a flow that started at the instant another flow's timer fired (before the
    rate recompute of that instant) had no rate yet, and the timer divided by it."""
    env = simpy.Environment()
    net = Network(env, {"c": 1000.0})

    def later():
        yield env.timeout(1.0)  # queued before the first flow's timer, so it runs first
        yield from net.send((("c", 1.0),), 500, 0.0)

    env.process(later())
    env.process(net.send((("c", 1.0),), 1000, 0.0))
    env.run()
    assert env.now == pytest.approx(1.5)
