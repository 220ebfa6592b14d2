"""The values behind the figures' error bars: the best factor's NMI with its standard error, and the spread
of the cluster member counts that the cluster stability gives."""

import numpy as np
import pytest

from repspace.plots.structure import best_factor_nmi, member_count_spread


def test_best_factor_nmi_takes_the_error_of_the_factor_it_picks():
    nmi = np.array([[0.2, 0.9, 0.1], [0.5, np.nan, 0.6], [np.nan, np.nan, np.nan]])
    se = np.array([[0.3, 0.01, 0.2], [0.04, 0.5, 0.07], [0.1, 0.1, 0.1]])
    value, err = best_factor_nmi(nmi, se)
    np.testing.assert_array_equal(value, [0.9, 0.6, np.nan])
    np.testing.assert_array_equal(err, [0.01, 0.07, np.nan])
    value, err = best_factor_nmi(nmi, None)  # a run without errors: values, and NaN errors
    np.testing.assert_array_equal(value, [0.9, 0.6, np.nan])
    assert np.isnan(err).all()


def test_member_count_spread_is_the_binomial_sum_of_the_members_stabilities():
    rng = np.random.default_rng(0)
    p = np.array([1.0, 0.9, 0.6, 0.3, np.nan])
    mean, sd = member_count_spread(p)
    draws = (rng.random((200_000, 4)) < p[:4]).sum(axis=1)  # members kept independently, each with its stability
    assert mean == pytest.approx(draws.mean(), abs=0.01)  # 200,000 draws: the mean's error is about 0.002
    assert sd == pytest.approx(draws.std(), rel=0.01)
    assert member_count_spread(np.array([])) == (0.0, 0.0)
