"""tinyfit.stats against values computed by hand and tabulated: t quantiles, t intervals of
means and of paired differences, exact binomial intervals."""
import math

import pytest

from tinyfit.stats import fisher_exact, holm, t_test_p, betainc, binomial_ci, mean_ci, paired_difference, t_quantile

# two-sided 95% critical values of Student's t (any statistics table)
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 9: 2.2622, 30: 2.0423}


@pytest.mark.parametrize("df,t", sorted(T975.items()))
def test_t_quantiles_match_the_table(df, t):
    assert t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-t, abs=1e-4)


def test_incomplete_beta_at_closed_forms():
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b
    for x in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert betainc(1, 1, x) == pytest.approx(x)
        assert betainc(3, 1, x) == pytest.approx(x ** 3)
        assert betainc(1, 4, x) == pytest.approx(1 - (1 - x) ** 4)


def test_mean_interval_by_hand():
    # 1..5: mean 3, sd sqrt(2.5), half-width t(0.975, 4) * sd / sqrt(5) = 2.7764 * 0.7071 = 1.9632
    mean, sd, low, high = mean_ci([1, 2, 3, 4, 5])
    assert (mean, sd) == (3, pytest.approx(math.sqrt(2.5)))
    assert (low, high) == (pytest.approx(1.0368, abs=1e-4), pytest.approx(4.9632, abs=1e-4))
    assert all(math.isnan(v) for v in mean_ci([0.3])[1:])


def test_paired_difference_by_hand():
    # d = a - b = -0.010, -0.011, -0.009: mean -0.010, sd 0.001, half 4.3027 * 0.001 / sqrt(3) = 0.002484
    a, b = {0: .010, 1: .020, 2: .031}, {0: .020, 1: .031, 2: .040}
    p = paired_difference(a, b)
    assert p["n"] == 3 and p["mean"] == pytest.approx(-0.010) and p["sd"] == pytest.approx(0.001)
    assert (p["low"], p["high"]) == (pytest.approx(-0.012484, abs=1e-6), pytest.approx(-0.007516, abs=1e-6))
    assert p["verdict"] == "a" and p["a_lower"] == 3 and p["b_lower"] == 0
    # the interval includes zero: no verdict, whatever the mean says
    tie = paired_difference({0: .02, 1: .03, 2: .01}, {0: .03, 1: .02, 2: .02})
    assert tie["verdict"] is None and tie["low"] < 0 < tie["high"]
    # only common seeds are paired; one seed gives no interval and no verdict
    one = paired_difference({0: .5, 7: .1}, {0: .1})
    assert one["n"] == 1 and one["verdict"] is None
    # a difference of -d reverses the verdict; the standard deviation is the sample (n - 1) one
    rev = paired_difference(b, a)
    assert rev["verdict"] == "b" and rev["sd"] == pytest.approx(0.001)


@pytest.mark.parametrize("k,n,low,high", [
    (0, 5, 0.0, 0.5218), (5, 5, 0.4782, 1.0), (2, 5, 0.0527, 0.8534), (3, 6, 0.1181, 0.8819),
    (1, 10, 0.0025, 0.4450), (6, 6, 0.5407, 1.0)])
def test_exact_binomial_intervals_match_tabulated_values(k, n, low, high):
    # Clopper-Pearson 95% intervals (e.g. Newcombe 1998; any exact-CI table)
    lo, hi = binomial_ci(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_bad_arguments():
    with pytest.raises(ValueError):
        binomial_ci(6, 5)
    with pytest.raises(ValueError):
        t_quantile(1.5, 3)
    with pytest.raises(ValueError, match="share no seed"):
        paired_difference({0: 1.0}, {1: 1.0})


def test_fisher_exact_against_hand_computed_tables():
    # margins 3 + 3 with 3 successes: only the two extreme tables are as unlikely as 0 vs 3, each 1 / C(6, 3)
    assert fisher_exact(0, 3, 3, 3) == pytest.approx(2 / 20)
    assert fisher_exact(0, 6, 6, 6) == pytest.approx(2 / 924)
    # 1 of 3 against 3 of 3: P(x = 1) = 3/15, P(2) = 9/15, P(3) = 3/15; tables no likelier than x = 1: 6/15
    assert fisher_exact(1, 3, 3, 3) == pytest.approx(6 / 15)
    assert fisher_exact(2, 5, 2, 5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        fisher_exact(4, 3, 0, 3)


def test_holm_steps_down_and_keeps_the_order():
    # sorted 0.01, 0.03, 0.04, 0.2 -> 4 x 0.01, 3 x 0.03, max(0.09, 2 x 0.04), max(0.09, 0.2)
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_t_test_p_value_by_hand():
    # d = -0.010, -0.011, -0.009: t = 0.01 / (0.001 / sqrt 3) = 17.32; with 2 degrees of freedom the
    # two-sided p-value is 1 - |t| / sqrt(t^2 + 2)
    t = 0.01 / (0.001 / 3 ** 0.5)
    assert t_test_p(-0.01, 0.001, 3) == pytest.approx(1 - t / (t * t + 2) ** 0.5, rel=1e-6)
    assert t_test_p(0.2, float("nan"), 1) == 1.0 and t_test_p(0.0, 0.0, 3) == 1.0
