"""Statistics for paired comparisons: geometric means and bootstrap confidence intervals.
Pure numpy; no TVM."""

from __future__ import annotations

import math

import numpy as np


def geomean(values) -> float:
    values = np.asarray(list(values), dtype=float)
    if values.size == 0 or np.any(values <= 0) or not np.all(np.isfinite(values)):
        return float("nan")
    return float(np.exp(np.mean(np.log(values))))


def bootstrap_geomean_ci(ratios, confidence: float = 0.95, resamples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the geometric mean of paired ratios (resampling pairs).
    With very few pairs the interval is only indicative: report n next to it."""
    logs = np.log(np.asarray(list(ratios), dtype=float))
    if logs.size == 0:
        return float("nan"), float("nan")
    if logs.size == 1:
        value = math.exp(logs[0])
        return value, value
    rng = np.random.default_rng(seed)
    samples = rng.choice(logs, size=(resamples, logs.size), replace=True).mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(math.exp(low)), float(math.exp(high))


def paired_ratios(baseline: dict, candidate: dict) -> list[float]:
    """Speedup of candidate over baseline for every key (seed) both have: baseline/candidate."""
    keys = sorted(set(baseline) & set(candidate))
    return [baseline[k] / candidate[k] for k in keys if baseline[k] and candidate[k]]
