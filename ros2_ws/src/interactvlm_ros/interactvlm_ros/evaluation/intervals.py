"""Bootstrap confidence intervals of the reported means (an F1 reported by ``eval`` is a mean of per-sample F1).

Percentile bootstrap: ``resamples`` draws of the scored units with replacement, from a generator seeded with
``seed`` (fixed, so an interval is reproducible to the last digit); the interval is the ``(1-level)/2`` and
``(1+level)/2`` quantiles of the resampled means. A unit is one row (a sample), or with ``groups`` all rows of a
group at once: the object queries of one image are not independent, so they are resampled together and a mean
over rows is ``Σ row values / Σ rows`` of the drawn groups.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def bootstrap_mean_ci(values, groups=None, resamples: int = RESAMPLES, seed: int = SEED,
                      level: float = LEVEL) -> tuple[float, float]:
    """``(low, high)`` interval of the mean of ``values [S]``; ``groups [S]`` (any labels) resamples whole groups."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    if not np.all(np.isfinite(values)):
        raise ValueError("bootstrap values contain NaN or inf")
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if groups is None:
        ids = np.arange(values.size)
    else:
        groups = np.asarray(groups).ravel()
        if groups.size != values.size:
            raise ValueError(f"{groups.size} group labels for {values.size} values")
        ids = np.unique(groups, return_inverse=True)[1].ravel()
    sums = np.bincount(ids, weights=values)
    counts = np.bincount(ids).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def interval_note(unit: str) -> dict:
    """What the ``*_ci`` keys of an evaluation mean, for its JSON: method, level, resamples, seed, unit."""
    return {"method": "percentile bootstrap", "level": LEVEL, "resamples": RESAMPLES, "seed": SEED,
            "unit": unit}


def rounded_ci(values, groups=None, digits: int = 4) -> list[float]:
    """:func:`bootstrap_mean_ci` with the default settings as a JSON-ready ``[low, high]``."""
    low, high = bootstrap_mean_ci(values, groups)
    return [round(low, digits), round(high, digits)]
