"""A real Kubernetes control plane, KEDA and Prometheus on one machine, driving the
project's own manifests: `make e2e` (see README, "Real cluster on one machine").

At the top, what is run: `__main__` (`python -m e2e`: builds, then starts the run in
the sandbox), `in_sandbox` (the run inside it, from start to end) and `pod_burst` (the
node alone starting many pods, a tool of its own). Below them three packages, lowest
first, none importing one above it (tests/test_tooling_graph.py):

- `e2e.cluster`: bringing the cluster up and reading it;
- `e2e.experiment`: what is run on it (the step's load, faults, disruptions, the fleet
  at zero);
- `e2e.report`: the run's outputs and the bench's report over several runs.

A development tool, not shipped with the services.
"""
