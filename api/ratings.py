"""Rating formulas: pure functions of counts, no I/O.

- Up/down votes: the lower bound of the Wilson score interval, the usual way to rank
  items by "how sure are we that most people like it" (42 up / 7 down at 95 % -> 0.7333).
- Star histograms `[n1, n2, n3, n4, n5]` (count of 1-star first): the Bayesian average,
  optionally pulled towards a prior `mean` by `weight` pseudo-votes, and, for ranking, a
  lower bound of the mean under a uniform Dirichlet prior (one pseudo-vote per level),
  from the normal approximation to its posterior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

STAR_LEVELS = 5
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Prior:
    """`weight` pseudo-votes at `mean` stars, for items with few votes of their own."""

    mean: float
    weight: float


@lru_cache(maxsize=256)
def z_for_confidence(confidence: float) -> float:
    """The two-sided normal quantile for `confidence` in (0, 1): 0.95 -> 1.96.

    Written as `-inv_cdf((1 - c) / 2)` because `(1 + c) / 2` rounds to 1.0 for c close
    to 1, where `inv_cdf` is undefined.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    return 0.0 - _STANDARD_NORMAL.inv_cdf((1.0 - confidence) / 2.0)


def wilson_lower_bound(up: int, down: int, z: float) -> float:
    """Lower bound of the Wilson score interval for the share of up votes; 0 with no votes."""
    n = up + down
    if n == 0:
        return 0.0
    p = up / n
    z2_n = z * z / n
    centre = p + z2_n / 2.0
    margin = z * math.sqrt(p * (1.0 - p) / n + z2_n / (4.0 * n))
    return max(0.0, (centre - margin) / (1.0 + z2_n))


def star_average(stars: Sequence[int], prior: Prior | None = None) -> float | None:
    """Mean stars, with `prior.weight` extra votes at `prior.mean`; None if there is nothing."""
    count = float(sum(stars))
    total = float(sum(level * n for level, n in enumerate(stars, start=1)))
    if prior is not None:
        count += prior.weight
        total += prior.weight * prior.mean
    return total / count if count > 0.0 else None


def star_lower_bound(stars: Sequence[int], z: float) -> float:
    """Lower bound of the mean stars under a Dirichlet(1, ..., 1) prior, for ranking.

    With one pseudo-vote per level an item without votes sits at the middle (3 stars)
    with a wide interval, so a few good votes never outrank many good votes.
    """
    count = float(sum(stars) + len(stars))
    mean = sum(level * (n + 1) for level, n in enumerate(stars, start=1)) / count
    second_moment = sum(level * level * (n + 1) for level, n in enumerate(stars, start=1)) / count
    variance = max(0.0, second_moment - mean * mean)
    return mean - z * math.sqrt(variance / (count + 1.0))
