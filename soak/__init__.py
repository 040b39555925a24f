"""Soak and chaos runs: real rating pods, the real scaler, real load, real faults.

`python -m soak` runs three `rating-api` processes and one `rating-scaler` on
127.0.0.1, offers them twice their total capacity with `hey`, asks the scaler about 50
ScaledObjects the way KEDA does, and reports resident memory, open file descriptors,
5xx answers and scaler errors. `--chaos` also kills, restarts, freezes and slows one pod
at a time and checks what the scaler answers meanwhile. Every run is bounded in time
and stops by itself.
"""
