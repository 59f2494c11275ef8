"""The statistics of results over seeds: t intervals of means and of paired differences, and
exact (Clopper-Pearson) binomial intervals of yes/no outcomes, Fisher's exact test of two
such counts, and Holm's correction for a family of tests. Pure Python, no SciPy.

Why t intervals and not a bootstrap over seeds: a study has 3 to 6 seeds, and a percentile
bootstrap of so few values is known to be too narrow (it cannot produce a value outside the
observed ones and ignores that the spread itself is estimated). The t interval accounts for
both; it assumes the paired differences are roughly normal, which a yes/no outcome (a run
stuck at chance or not) is not: such outcomes are reported as counts with an exact binomial
interval instead (``binomial_ci``), beside the error of the runs that trained.
"""
from __future__ import annotations

import math
import statistics

__all__ = ["betainc", "t_quantile", "beta_quantile", "mean_ci", "paired_difference", "binomial_ci", "t_test_p",
           "fisher_exact", "holm"]


def _betacf(a, b, x):
    # continued fraction of the incomplete beta function (modified Lentz)
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b) (a, b > 0, 0 <= x <= 1)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x!r}")
    if x in (0.0, 1.0):
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _bisect(f, lo, hi, target):
    # f increasing on [lo, hi]; 200 halvings reach the float resolution of any bracket used here
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def beta_quantile(p, a, b):
    """x with I_x(a, b) = p."""
    return _bisect(lambda x: betainc(a, b, x), 0.0, 1.0, p)


def _t_cdf(t, df):
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The p-quantile of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p!r}, df={df!r}")
    hi = 1.0
    while _t_cdf(hi, df) < max(p, 1 - p):
        hi *= 2.0
    return _bisect(lambda t: _t_cdf(t, df), -hi, hi, p)


def mean_ci(values, level=0.95):
    """(mean, sd, low, high): the mean of ``values``, their sample standard deviation (n - 1)
    and the t interval of the mean at ``level``; the interval is (nan, nan) for one value."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_ci needs at least one value")
    mean = statistics.mean(v)
    if len(v) < 2:
        return mean, math.nan, math.nan, math.nan
    sd = statistics.stdev(v)
    half = t_quantile(0.5 + level / 2, len(v) - 1) * sd / math.sqrt(len(v))
    return mean, sd, mean - half, mean + half


def paired_difference(a, b, level=0.95):
    """Paired comparison of two methods run on the same seeds: ``a`` and ``b`` map seed ->
    value (lower is better). d = a - b per common seed; returns {n, mean, sd, low, high,
    a_lower, b_lower, verdict} where verdict is 'a' or 'b' (the lower one) only when the t
    interval of the mean difference excludes zero, else None."""
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    if not d:
        raise ValueError("the two methods share no seed")
    mean, sd, low, high = mean_ci(d, level)
    verdict = None
    if len(d) > 1 and (high < 0 or low > 0):
        verdict = "a" if high < 0 else "b"
    return {"n": len(d), "seeds": seeds, "mean": mean, "sd": sd, "low": low, "high": high,
            "a_lower": sum(x < 0 for x in d), "b_lower": sum(x > 0 for x in d), "verdict": verdict}


def binomial_ci(k, n, level=0.95):
    """The exact (Clopper-Pearson) interval of a proportion from ``k`` successes in ``n``
    trials: it covers the true proportion with probability at least ``level``."""
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n and n > 0):
        raise ValueError(f"need integers 0 <= k <= n, n > 0; got k={k!r}, n={n!r}")
    alpha = 1.0 - level
    low = 0.0 if k == 0 else beta_quantile(alpha / 2, k, n - k + 1)
    high = 1.0 if k == n else beta_quantile(1 - alpha / 2, k + 1, n - k)
    return low, high


def t_test_p(mean, sd, n):
    """The two-sided p-value of a one-sample t test of ``mean`` = 0 from ``n`` values with
    sample standard deviation ``sd`` (1.0 when it cannot be computed: one value, or no spread
    and a zero mean; 0.0 for a non-zero mean with no spread)."""
    if n < 2 or sd != sd:
        return 1.0
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    t = abs(mean) / (sd / math.sqrt(n))
    return min(1.0, 2.0 * (1.0 - _t_cdf(t, n - 1)))


def fisher_exact(k1, n1, k2, n2):
    """The two-sided p-value of Fisher's exact test that two proportions are equal: ``k1`` of
    ``n1`` against ``k2`` of ``n2`` (the sum of the probabilities of every table with the same
    margins that is no more likely than the observed one, under the hypergeometric law)."""
    if not all(isinstance(v, int) for v in (k1, n1, k2, n2)) or not (0 <= k1 <= n1 and 0 <= k2 <= n2) or not n1 * n2:
        raise ValueError(f"need integers 0 <= k <= n, n > 0; got {k1} of {n1}, {k2} of {n2}")
    k, n = k1 + k2, n1 + n2

    def prob(x):  # P(first group has x of the k successes)
        return math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k)
    seen = prob(k1)
    xs = range(max(0, k - n2), min(k, n1) + 1)
    return min(1.0, sum(p for p in map(prob, xs) if p <= seen * (1 + 1e-9)))


def holm(p_values):
    """Holm's step-down adjustment of ``p_values`` (one family of tests): the adjusted
    p-values, in the given order. A test is rejected at level alpha when its adjusted p-value
    is below alpha; the chance of any false rejection in the family stays below alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out
