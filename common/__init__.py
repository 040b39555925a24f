"""What both services need, with one set of rules: imported by `api` and `scaler` alike.

- `flags.py`: command-line flags that fall back to `<PREFIX><FLAG>` environment variables
- `numbers.py`: ASCII-only integers and decimals, for flags and trigger metadata
- `token_file.py`: a bearer token in a file mounted from a Secret, re-read on change
- `listener.py`: a listening TCP socket whose error names its flag

Imports nothing from `api` or `scaler`, nor anything outside the standard library.
"""
