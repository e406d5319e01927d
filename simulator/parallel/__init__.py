"""Parallel strategies (registry `strategy`): single, data, model, pipeline and
parameter_server, one file each; each turns one step on a cluster into an engine plan."""

from simulator.parallel import data, model, parameter_server, pipeline, single  # noqa: F401
from simulator.parallel.job import ClusterPlan, Job, strategy

__all__ = ["ClusterPlan", "Job", "strategy"]
