"""Parallel strategies: one device equals the single-device run, the symmetric shortcut
equals the full simulation, free communication never beats n x, more bandwidth never
slows a step, DDP buckets overlap backward, GPipe micro-batches, Downpour, bad options."""

from __future__ import annotations

import json

import pytest
from cluster_helpers import cluster

from hardware_models.catalog_io import make_device
from hardware_models.ideal import IdealDevice
from simulator.api.predict import predict, predict_on
from simulator.core.errors import UserError
from workloads.model_def import load_model

ALEXNET, VGG = load_model("alexnet"), load_model("vgg16")
H200 = make_device("h200")
ONE_DEVICE = [("single", {}), ("data", {}), ("model", {}), ("model", {"split": "layers"}),
              ("pipeline", {"micro_batches": 1}), ("parameter_server", {})]


def _run(model, device, topo, parallel, batch=16, options=None, precision="fp32"):
    return predict_on(model, device, topo, parallel, options, batch=batch, precision=precision,
                      mode="train").result


def _single(model, device, batch, precision):
    return predict_on(model, device, cluster(1, 1), batch=batch, precision=precision,
                      mode="train").result


@pytest.mark.parametrize("device", [IdealDevice(), H200], ids=["ideal", "h200"])
@pytest.mark.parametrize("parallel, options", ONE_DEVICE)
def test_one_device_equals_the_single_device_run(device, parallel, options):
    single = _single(ALEXNET, device, 16, "bf16")
    one = _run(ALEXNET, device, cluster(1, 1), parallel, 16, options, "bf16")
    assert one["step_time_s"] == single["step_time_s"]
    if parallel != "single":  # a parallel strategy reports its scaling, even on one device
        assert one["scaling_efficiency"] == 1.0 and one["communication_s"] == 0.0


CASES = [("data", {}, (1, 2)), ("data", {}, (2, 2)),
         ("data", {"collective": "allreduce_tree"}, (2, 2)),
         ("model", {}, (1, 2)), ("model", {}, (2, 2)), ("model", {}, (1, 4)),
         ("parameter_server", {"replicas": 3}, (4, 1)),
         ("parameter_server", {"replicas": 2, "partitions": 2, "ps_shards": 3}, (3, 2)),
         ("parameter_server", {"replicas": 2, "partitions": 2}, (2, 2))]
COLOCATED = {"replicas": 2, "partitions": 2}  # the shard sits on worker 0: not symmetric


# the shortcut is exact where the devices of a group are mirror images; the halo exchanges of
# a spatial split are not quite (one side sends forward halos, the other backward ones), which
# shows once a slow host makes launch order matter: the spec sheet's host keeps it out of view
H200_FAST_HOST = make_device("h200", spec_sheet=True)


@pytest.mark.parametrize("device", [IdealDevice(), H200_FAST_HOST], ids=["ideal", "h200"])
@pytest.mark.parametrize("parallel, options, shape", CASES)
def test_symmetric_shortcut_equals_full_simulation(device, parallel, options, shape):
    topo = cluster(*shape)
    full = _run(ALEXNET, device, topo, parallel, 16, {**options, "simulate": "full"})
    sym = _run(ALEXNET, device, topo, parallel, 16, {**options, "simulate": "symmetric"})
    assert (full["simulated"], sym["simulated"]) == ("full", "symmetric")
    keys = ("step_time_s", "scaling_efficiency")
    if options != COLOCATED:  # the server's host talks more than the others
        keys += ("communication_s",)
    for key in keys:
        assert sym[key] == pytest.approx(full[key], rel=1e-9, abs=1e-15), key


@pytest.mark.parametrize("parallel, options", [("data", {}), ("model", {}), ("pipeline", {}),
                                               ("model", {"split": "layers"}),
                                               ("parameter_server", {"replicas": 4})])
@pytest.mark.parametrize("device", [IdealDevice(), H200], ids=["ideal", "h200"])
def test_free_communication_never_beats_n_times(parallel, options, device):
    free = cluster(2, 2, intra_bytes_per_s=1e18, inter_bytes_per_s=1e18, latency_s=1e-15)
    result = _run(ALEXNET, device, free, parallel, 16, options)
    assert result["scaling_efficiency"] <= 1 + 1e-9


@pytest.mark.parametrize("parallel", ["data", "model", "pipeline", "parameter_server"])
def test_more_bandwidth_never_slows_a_step(parallel):
    base = _run(ALEXNET, H200, cluster(2, 2, 20e9, 5e9), parallel)["step_time_s"] * (1 + 1e-12)
    assert _run(ALEXNET, H200, cluster(2, 2, 40e9, 5e9), parallel)["step_time_s"] <= base
    assert _run(ALEXNET, H200, cluster(2, 2, 20e9, 10e9), parallel)["step_time_s"] <= base


def test_ddp_buckets_overlap_the_backward_pass():
    # the ring: communication_s (a device's own transfer spans) undercounts a pipelined tree's
    # waits, which NCCL's automatic choice may pick for these buckets
    topo, ring = cluster(2, 4, 100e9, 10e9), {"collective": "allreduce_ring"}
    bucketed = _run(VGG, H200, topo, "data", 32, ring)
    one_bucket = _run(VGG, H200, topo, "data", 32, {**ring, "bucket_bytes": 1e12})
    # fc8+fc7 (83 MB), fc6 (411 MB), conv5_x, conv4_x+conv3_3, the rest: 5 buckets of >= 25 MiB
    assert bucketed["buckets"] == 5 and one_bucket["buckets"] == 1
    assert bucketed["gradient_bytes"] == one_bucket["gradient_bytes"] == VGG_PARAMS * 4
    assert bucketed["breakdown"]["communication"] < 0.9 * bucketed["communication_s"]
    assert bucketed["step_time_s"] < one_bucket["step_time_s"]


VGG_PARAMS = 138_357_544


def test_gpipe_micro_batches_shrink_the_bubble():
    topo = cluster(1, 4, 1e15, 1e15, 1e-12)
    one = _run(VGG, IdealDevice(), topo, "pipeline", 32, {"micro_batches": 1})
    many = _run(VGG, IdealDevice(), topo, "pipeline", 32, {"micro_batches": 8})
    assert many["step_time_s"] < 0.6 * one["step_time_s"]
    assert (many["stages"], many["micro_batches"]) == (4, 8)


def test_downpour_workers_fetch_and_push_through_the_servers():
    topo = cluster(5, 1, 10e9, 1e9)
    one_server = _run(ALEXNET, H200, topo, "parameter_server", 16, {"replicas": 4})
    assert (one_server["replicas"], one_server["ps_devices"]) == (4, 1)
    assert one_server["samples_per_step"] == 4 * 16
    # 61M fp32 parameters to and from one server NIC shared by 4 workers: about 2 x 4 x 0.24 s
    assert one_server["communication_s"] > 2 * 4 * ALEXNET_PARAMS * 4 / 1e9
    assert one_server["breakdown"]["communication"] > 0.9 * one_server["step_time_s"]
    two_servers = _run(ALEXNET, H200, cluster(6, 1, 10e9, 1e9), "parameter_server", 16,
                       {"replicas": 4, "ps_shards": 2})
    assert two_servers["step_time_s"] < 0.6 * one_server["step_time_s"]


ALEXNET_PARAMS = 61_100_840


@pytest.mark.parametrize("parallel, options, words", [
    ("data", {"bucket_mb": 25}, ["bucket_mb", "bucket_bytes"]),
    ("pipeline", {"micro_batches": 5}, ["micro_batches", "does not divide"]),
    ("pipeline", {"micro_batches": 0}, ["micro_batches", "positive"]),
    ("model", {"split": "diagonal"}, ["split", "spatial"]),
    ("single", {}, ["single", "1 device"]),
    ("parameter_server", {"replicas": 3, "partitions": 2}, ["replicas x partitions"]),
    ("data", {"simulate": "sometimes"}, ["simulate"]),
    ("data", {"collective": "allring"}, ["options.collective", "allreduce"]),
    ("hybrid", {}, ["parallel", "unknown strategy 'hybrid'"]),
])
def test_bad_options_are_user_errors(parallel, options, words):
    with pytest.raises(UserError) as err:
        _run(ALEXNET, IdealDevice(), cluster(2, 2), parallel, 16, options)
    for word in words:
        assert word in str(err.value)


def test_same_inputs_give_identical_results():
    def once():
        return json.dumps(predict("vgg16", "h200", devices=16, parallel="data", batch=32,
                                  precision="bf16", mode="train"), sort_keys=True)
    assert once() == once()


def test_cluster_result_has_the_single_device_keys():
    single = _single(ALEXNET, H200, 16, "fp32")
    multi = predict("alexnet", "h200", devices=4, devices_per_node=2, parallel="data", batch=16,
                    precision="fp32", mode="train")
    assert set(single) <= set(multi)
    assert {"devices", "cores", "communication_s", "scaling_efficiency"} <= set(multi)
    assert multi["cores"] == 4 * H200.cores and multi["intra_link"] == "nvlink4"
    assert multi["inter_link"] == "ib-ndr"
    assert multi["samples_per_s"] == pytest.approx(4 * 16 / multi["step_time_s"])
    assert sum(multi["breakdown"].values()) == pytest.approx(multi["step_time_s"])


def test_pipeline_stages_are_never_folded_into_a_representative():
    # regression: a 16-stage pipeline said 'symmetric' (the default for > 8 devices) although
    # every stage was simulated
    result = _run(ALEXNET, IdealDevice(), cluster(2, 8), "pipeline", 16, {"micro_batches": 2})
    assert result["simulated"] == "full" and result["stages"] == 16


def test_a_shard_holds_its_share_of_size_attributes():
    # regression: a model-parallel convolution kept the whole layer's layout transposes and
    # Winograd tiles on every device (counted `parts` times)
    from simulator.parallel.shard import shard_op
    from workloads.ops import Op
    op = Op("c", "gemm", "bwd_weight", "conv", 8e9, 4e6, 2e6, "fp32", 64,
            attrs=(("layout_bytes", 8e6), ("winograd_tiles", 10.0), ("algorithm", "x")))
    part = shard_op(op, 4)
    assert part.attr("layout_bytes") == 2e6 and part.attr("winograd_tiles") == 3.0
    assert part.attr("algorithm") == "x" and part.bytes_read == 1e6


def _ddp_trace(options=None, mode="train"):
    pred = predict_on(VGG, H200, cluster(1, 2, 300e9, 10e9), "data", options, batch=32,
                      precision="fp32", mode=mode)
    return pred.result, [s for s in pred.trace.spans if s.device == 0]


def test_ddp_reducer_copies_gradients_into_buckets_and_back():
    # reducer.cpp: mul_out(bucket_view, grad, 1/world) per tensor when a gradient is ready,
    # grad.copy_(bucket_view) per tensor once its bucket is all-reduced, then the optimizer
    result, spans = _ddp_trace()
    by_name = {s.name: s for s in spans}
    into = [s for s in spans if s.name.endswith(".to_bucket")]
    out = [s for s in spans if s.name.endswith(".from_bucket")]
    assert len(into) == len(out) == 16  # VGG16's 13 conv and 3 linear layers
    assert all(s.stream == "compute" for s in into + out)
    # each carries the layer's fp32 gradient in and out: 2 x 4 bytes per parameter
    assert sum(s.bytes for s in into) == sum(s.bytes for s in out) == 2 * 4 * VGG_PARAMS
    fc8 = by_name["d0.ddp.fc8.to_bucket"]
    assert fc8.start_s >= by_name["d0.fc8.bwd_weight"].end_s
    first_bucket = min((s for s in spans if s.kind == "collective"), key=lambda s: s.start_s)
    assert first_bucket.start_s >= by_name["d0.ddp.fc7.to_bucket"].end_s
    last_collective = max(s.end_s for s in spans if s.kind == "collective")
    # conv1_1 is in the last bucket: its copy waits for the last all-reduce
    assert by_name["d0.ddp.conv1_1.from_bucket"].start_s >= last_collective
    step = next(s for s in spans if s.phase == "update" and s.kind == "optimizer")
    assert step.start_s >= max(s.end_s for s in out)
    # the copies cost the step: DDP on two GPUs is no longer 99.9% efficient
    assert result["scaling_efficiency"] < 0.99


def test_ddp_gradients_as_bucket_views_divide_in_place_and_copy_nothing():
    copied, _ = _ddp_trace()
    viewed, spans = _ddp_trace({"gradient_as_bucket_view": True})
    assert not any(s.name.endswith((".to_bucket", ".from_bucket")) for s in spans)
    scaled = [s for s in spans if s.name.endswith(".scale_bucket")]
    assert len(scaled) == 16 and sum(s.bytes for s in scaled) == 2 * 4 * VGG_PARAMS
    assert viewed["step_time_s"] < copied["step_time_s"]
    # the buckets are a second copy of the fp32 gradients, unless the gradients are views
    assert copied["memory"]["ddp_buckets_bytes"] == 4 * VGG_PARAMS
    assert copied["memory_peak_bytes"] - viewed["memory_peak_bytes"] == 4 * VGG_PARAMS
    assert "ddp_buckets_bytes" not in viewed["memory"]
    with pytest.raises(UserError, match="gradient_as_bucket_view: must be true or false"):
        _ddp_trace({"gradient_as_bucket_view": "yes"})


def test_ddp_inference_and_one_device_run_no_reducer():
    _, spans = _ddp_trace(mode="infer")
    assert not any(s.name.startswith("d0.ddp.") for s in spans)
    one = predict_on(VGG, H200, cluster(1, 1), "data", batch=32, precision="fp32", mode="train")
    assert not any(".ddp." in s.name for s in one.trace.spans)
    # a TPU all-reduces inside its compiled step: no reducer
    tpus = predict_on(VGG, make_device("tpu-v3"), cluster(1, 2, 300e9, 10e9), "data", batch=32,
                      precision="bf16", mode="train")
    assert any(s.kind == "collective" for s in tpus.trace.spans)
    assert not any(".ddp." in s.name for s in tpus.trace.spans)
