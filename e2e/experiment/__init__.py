"""What is run on the cluster `e2e.cluster` brings up, in the order `e2e.in_sandbox`
runs it: the step's load through the EndpointSlices (`balanced_load`) while both
scaler replicas are asked what KEDA asks (`agreement`); the faults (`faults`); the
voluntary disruptions (`disruptions`); the fleet at zero (`zero_fleet`). `readback`
compares what each HPA holds with what its ScaledObject asks.

Imports `e2e.cluster`, never `e2e.report`.
"""
