import math

import pytest

from shared_mcts.bench.stats import bootstrap_geomean_ci, geomean, paired_ratios


def test_geomean():
    assert geomean([1, 4]) == pytest.approx(2)
    assert math.isnan(geomean([]))
    assert math.isnan(geomean([1, -1]))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_agreement():
    ratios = [1.1, 1.3, 1.2, 1.25, 1.15]
    low, high = bootstrap_geomean_ci(ratios)
    assert low <= geomean(ratios) <= high
    tight_low, tight_high = bootstrap_geomean_ci([1.2] * 5)
    assert tight_low == pytest.approx(1.2) and tight_high == pytest.approx(1.2)
    assert bootstrap_geomean_ci([2.0]) == (2.0, 2.0)


def test_bootstrap_is_deterministic():
    assert bootstrap_geomean_ci([1, 2, 3]) == bootstrap_geomean_ci([1, 2, 3])


def test_paired_ratios_pair_by_seed_only():
    base = {0: 2.0, 1: 4.0, 2: 8.0}
    cand = {0: 1.0, 2: 2.0, 3: 1.0}
    assert paired_ratios(base, cand) == [2.0, 4.0]
