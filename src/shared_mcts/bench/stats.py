"""Statistics for paired comparisons of latencies: geometric means of per-seed ratios with
their confidence intervals, and the non-inferiority rule. Pure numpy/scipy; no TVM.

Why a Student t interval on the log-ratios: with 5-10 seeds the percentile bootstrap
under-covers (at n=5 it behaves like a z interval on a standard deviation that is itself
biased low, and it can only resample 5 values), so it claims more certainty than the data
hold. Latency ratios are close to lognormal (run-to-run noise multiplies), so the t interval
on their logs is the textbook interval and covers at its nominal rate. The bootstrap is kept
as a secondary column only."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
# A method "matches" a reference when the lower bound of its speedup's t interval is at least
# this: it is then at worst 5% slower, with 95% confidence. An interval that merely reaches 1.0
# rewards noise (a wide interval reaches anything).
NONINFERIORITY_MARGIN = 0.95
# Claims that quote a comparison resting on fewer seeds than this are indicative only.
HEADLINE_MIN_SEEDS = 10


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class RatioEstimate:
    """The geometric mean of n paired ratios with its intervals (None when n < 2: one ratio has
    no spread to estimate, so no interval is given rather than a fake zero-width one)."""

    n: int
    geomean: float
    t: Interval | None  # primary: Student t on the mean log-ratio
    bootstrap: Interval | None  # secondary: percentile bootstrap of the mean log-ratio
    confidence: float = CONFIDENCE

    def noninferior(self, margin: float = NONINFERIORITY_MARGIN) -> bool | None:
        """True when the t interval's lower bound is at least `margin`; None without an interval."""
        if self.t is None:
            return None
        return self.t.low >= margin


def _logs(ratios: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(ratios), dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"ratios must be positive and finite, got {values.tolist()}")
    return np.log(values)


def geomean(values: Iterable[float]) -> float:
    """Geometric mean; nan for an empty list or one holding a non-positive or non-finite value."""
    values = np.asarray(list(values), dtype=float)
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values <= 0):
        return float("nan")
    return float(np.exp(np.mean(np.log(values))))


def t_geomean_interval(ratios: Iterable[float], confidence: float = CONFIDENCE) -> Interval | None:
    """exp(mean ± t_{n-1} · sd / sqrt(n)) of the log-ratios; None for fewer than 2 ratios."""
    logs = _logs(ratios)
    if logs.size < 2:
        return None
    from scipy import stats as scipy_stats  # scipy.stats: about 1 s to import, only for intervals

    half = scipy_stats.t.ppf(0.5 + confidence / 2, df=logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    mean = logs.mean()
    return Interval(float(math.exp(mean - half)), float(math.exp(mean + half)))


def bootstrap_geomean_interval(ratios: Iterable[float], confidence: float = CONFIDENCE, resamples: int = 10000,
                               seed: int = 0) -> Interval | None:
    """Percentile bootstrap of the geometric mean (resampling the ratios); None for fewer than 2.
    Too narrow with few ratios: a secondary column only."""
    logs = _logs(ratios)
    if logs.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = rng.choice(logs, size=(resamples, logs.size), replace=True).mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(math.exp(low)), float(math.exp(high)))


def estimate_ratio(ratios: Iterable[float], confidence: float = CONFIDENCE) -> RatioEstimate:
    ratios = list(ratios)
    if not ratios:
        raise ValueError("no ratios to estimate")
    return RatioEstimate(n=len(ratios), geomean=geomean(ratios), t=t_geomean_interval(ratios, confidence),
                         bootstrap=bootstrap_geomean_interval(ratios, confidence), confidence=confidence)


def paired_ratios(baseline: Mapping[int, float], candidate: Mapping[int, float]) -> dict[int, float]:
    """Speedup of candidate over baseline (baseline / candidate) for every seed both have with a
    positive latency, by seed."""
    seeds = sorted(set(baseline) & set(candidate))
    return {s: baseline[s] / candidate[s] for s in seeds if baseline[s] > 0 and candidate[s] > 0}


def per_seed_geomean(per_workload: Mapping[str, Mapping[int, float]]) -> dict[int, float]:
    """Per seed, the geometric mean of its ratios over the workloads: the unit the interval over
    workloads is computed on. Only seeds that have every workload count (a seed missing one would
    change which workloads its mean is over)."""
    if not per_workload:
        return {}
    seeds = set.intersection(*(set(ratios) for ratios in per_workload.values()))
    return {s: geomean(ratios[s] for ratios in per_workload.values()) for s in sorted(seeds)}
