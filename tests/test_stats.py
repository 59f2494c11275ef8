"""tinyfit.stats against values computed by hand and tabulated: t quantiles, t intervals of
means and of paired differences, exact binomial intervals."""
import math

import pytest
from hypothesis import given, strategies as st

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


def test_every_domain_error_says_what_it_needs():

    cases = [(lambda: betainc(1.0, 1.0, 1.5), "x must be in [0, 1], got 1.5"),
             (lambda: t_quantile(0.0, 3), "need 0 < p < 1 and df > 0, got p=0.0, df=3"),
             (lambda: t_quantile(1.0, 3), "need 0 < p < 1 and df > 0, got p=1.0, df=3"),
             (lambda: t_quantile(0.5, 0), "need 0 < p < 1 and df > 0, got p=0.5, df=0"),
             (lambda: mean_ci([]), "mean_ci needs at least one value"),
             (lambda: paired_difference({0: .1}, {1: .1}), "the two methods share no seed"),
             (lambda: binomial_ci(1.0, 3), "need integers 0 <= k <= n, n > 0; got k=1.0, n=3"),
             (lambda: binomial_ci(1, 3.0), "need integers 0 <= k <= n, n > 0; got k=1, n=3.0"),
             (lambda: binomial_ci(4, 3), "need integers 0 <= k <= n, n > 0; got k=4, n=3"),
             (lambda: binomial_ci(0, 0), "need integers 0 <= k <= n, n > 0; got k=0, n=0"),
             (lambda: fisher_exact(0, 1, 0, 0), "need integers 0 <= k <= n, n > 0; got 0 of 1, 0 of 0")]
    for call, message in cases:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message


def test_two_values_and_other_levels_by_hand():

    # t(0.975, 1) = 12.7062; mean 2, sd sqrt(2), half-width 12.7062
    mean, sd, low, high = mean_ci([1.0, 3.0])
    assert (mean, sd) == (2.0, pytest.approx(2 ** 0.5)) and low == pytest.approx(2 - 12.7062, abs=1e-3)
    assert t_quantile(0.7, 5) == pytest.approx(0.5594, abs=1e-4)   # a quantile between the median and t = 1
    # two seeds, both lower for a by about as much: d = -.10, -.09, half-width 12.7 x .0071 / 1.41 = .064
    p = paired_difference({0: .10, 1: .12}, {0: .20, 1: .21})
    assert p["n"] == 2 and p["verdict"] == "a" and p["high"] == pytest.approx(-0.0315, abs=1e-4)
    p = paired_difference({0: .10, 1: .10, 2: .10}, {0: .20, 1: .21, 2: .20}, level=0.5)
    assert p["verdict"] == "a" and (p["a_lower"], p["b_lower"]) == (3, 0)
    # the level reaches the interval: d = -.1, -.3, +.1 excludes zero at 50% but not at 95%
    a, b = {0: .1, 1: .1, 2: .3}, {0: .2, 1: .4, 2: .2}
    half = paired_difference(a, b, level=0.5)
    assert (half["low"], half["high"]) == pytest.approx(mean_ci([-.1, -.3, .1], 0.5)[2:])
    assert half["verdict"] == "a" and paired_difference(a, b)["verdict"] is None
    # a tie counts for neither side
    p = paired_difference({0: .1, 1: .2, 2: .3}, {0: .1, 1: .1, 2: .4})
    assert (p["a_lower"], p["b_lower"]) == (1, 1)
    # t test: t = 1 / (1 / sqrt 2) = 1.414 on 1 df: p = 0.3918; no spread; no number
    assert t_test_p(1.0, 1.0, 2) == pytest.approx(0.3918, abs=1e-4)
    assert t_test_p(0.5, 0.0, 3) == 0.0 and t_test_p(0.0, 0.0, 3) == 1.0 and t_test_p(0.5, float("nan"), 3) == 1.0


@given(st.integers(1, 8), st.integers(1, 8), st.data())
def test_fisher_exact_against_an_enumeration_in_exact_fractions(n1, n2, data):
    from fractions import Fraction
    from math import comb

    k1, k2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    k, n = k1 + k2, n1 + n2
    prob = {x: Fraction(comb(n1, x) * comb(n2, k - x), comb(n, k)) for x in range(0, min(k, n1) + 1)
            if k - x <= n2}
    want = sum(p for p in prob.values() if p <= prob[k1])
    assert fisher_exact(k1, n1, k2, n2) == pytest.approx(float(want), rel=1e-12)


def test_holm_caps_adjusted_values_at_one():

    assert holm([0.6, 0.7]) == [1.0, 1.0] and holm([0.01, 0.04, 0.3]) == pytest.approx([0.03, 0.08, 0.3])
