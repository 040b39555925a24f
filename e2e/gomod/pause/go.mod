// The pause program of make e2e's node: the process each pod sandbox runs.
module openclaw.invalid/e2e/pause

go 1.25.0
