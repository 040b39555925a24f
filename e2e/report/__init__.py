"""What a run writes (`artifacts`: summary.json, a CSV per second, the chart) and the
bench's report over several runs (`bench`). Above `e2e.cluster` and
`e2e.experiment`: it may import both, neither imports it.
"""
