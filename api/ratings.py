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


StarRating = tuple[int, float | None, float]
"""(votes, Bayesian average or None without votes nor prior, lower bound for ranking)."""


def rate_stars(stars: Sequence[int], z: float, prior: Prior | None = None) -> StarRating:
    """Votes, average and ranking lower bound of a 5-level histogram, 1-star first.

    The lower bound adds one pseudo-vote to each level, so an item without votes sits
    at the middle (3 stars) with a wide interval, and a few good votes never outrank
    many good votes. It uses the normal approximation to the posterior of the mean.
    """
    # Written out for the five levels: this runs for every rated item.
    n1, n2, n3, n4, n5 = stars
    votes = n1 + n2 + n3 + n4 + n5
    total = n1 + 2 * n2 + 3 * n3 + 4 * n4 + 5 * n5
    squares = n1 + 4 * n2 + 9 * n3 + 16 * n4 + 25 * n5
    if prior is None:
        average = total / votes if votes else None
    else:
        weight = votes + prior.weight
        average = (total + prior.weight * prior.mean) / weight if weight > 0.0 else None
    # One pseudo-vote per level adds 5 votes, 1+2+3+4+5 = 15 stars and 1+4+9+16+25 = 55.
    smoothed_votes = votes + 5.0
    mean = (total + 15.0) / smoothed_votes
    second_moment = (squares + 55.0) / smoothed_votes
    variance = max(0.0, second_moment - mean * mean)
    return votes, average, mean - z * math.sqrt(variance / (smoothed_votes + 1.0))


def star_average(stars: Sequence[int], prior: Prior | None = None) -> float | None:
    """Mean stars, with `prior.weight` extra votes at `prior.mean`; None if there is nothing."""
    return rate_stars(stars, 0.0, prior)[1]


def star_lower_bound(stars: Sequence[int], z: float) -> float:
    """Lower bound of the mean stars under a Dirichlet(1, ..., 1) prior, for ranking."""
    return rate_stars(stars, z)[2]
