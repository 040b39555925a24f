"""Header values that tell clients about the bucket.

`RateLimit-Policy` and `RateLimit` follow draft-ietf-httpapi-ratelimit-headers (draft 10
and later: Structured Field lists of items named by a string). A token bucket has no
fixed window, so the policy states the burst as the quota `q` and the time to refill it
from empty as the window `w`: `q / w` is then the sustained rate. `RateLimit` gives the
whole tokens left as `r` and, as `t`, the seconds until the next token is due (0 while
one is left), which on a 429 is the same moment as `Retry-After`, as the draft asks.
"""

from __future__ import annotations

import math

POLICY_NAME = '"bucket"'


def policy_value(capacity: float, refill_per_s: float) -> str:
    """`RateLimit-Policy`, e.g. `"bucket";q=100;w=2` for 100 tokens at 50 per second."""
    window_s = max(1, math.ceil(capacity / refill_per_s))
    return f"{POLICY_NAME};q={math.floor(capacity)};w={window_s}"


def seconds_until_token(tokens: float, refill_per_s: float) -> int:
    """Whole seconds until one token is available: 0 if it is now, else at least 1."""
    if tokens >= 1.0:
        return 0
    return max(1, math.ceil((1.0 - tokens) / refill_per_s))


def ratelimit_value(tokens: float, refill_per_s: float) -> bytes:
    """`RateLimit`, e.g. `"bucket";r=37;t=0`, as bytes: it goes on every response."""
    return b'"bucket";r=%d;t=%d' % (tokens, seconds_until_token(tokens, refill_per_s))
