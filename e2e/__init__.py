"""A real Kubernetes control plane, KEDA and Prometheus on one machine, driving the
project's own manifests: `make e2e` (see README, "Real cluster on one machine").

A development tool, not shipped with the services.
"""
