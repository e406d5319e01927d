"""Workloads: layer definitions (data) and the builder that turns them into an OpGraph."""
