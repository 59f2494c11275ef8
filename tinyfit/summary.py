"""The statistics of a study's results (data in, data out): per cell and column the test
error over seeds with its 95% t interval, how many seeds left chance with their exact
binomial interval, and the paired comparisons its experiment names (``tinyfit.experiments``).
Presentation (tables, Markdown, figures) is ``tinyfit.report``'s.

A comparison is a paired t test of the test errors when every seed of both columns left
chance, and Fisher's exact test of how many seeds left chance when any did not (errors of
runs stuck at chance and of runs that trained make a bimodal sample that a t interval
describes badly). The verdicts of one experiment are one family: a difference is called only
when its Holm-adjusted p-value is below ALPHA; an undetected difference is given with the
bound of its 95% interval, never as equality.
"""
from __future__ import annotations

import statistics

from .columns import column_label, parse_column
from .experiments import EXPERIMENTS
from .stats import binomial_ci, fisher_exact, holm, mean_ci, paired_difference, t_test_p

__all__ = ["CHANCE_LINE", "ACROSS_DEPTHS", "ALPHA", "summarize", "compare", "choose_hint_weight"]

ALPHA = 0.05  # the family-wise error rate of an experiment's verdicts

# a run "left chance" when its test error is below this (guessing one class of ten: about 90%)
CHANCE_LINE = 0.5
# the cell comparing FitNets' errors across depths (its columns repeat runs shown in the per-depth cells)
ACROSS_DEPTHS = "FitNets across depths"
# the cell pooling every cell's runs (an experiment's ``across_cells``; its ``pools`` name others),
# seeds keyed by their cell
ACROSS_CELLS = "all cells pooled"


def choose_hint_weight(vals):
    """The single-stage hint weight chosen on validation: ``vals`` is {column "single-stage
    beta=B": {seed: validation error}}; the column with the lowest mean over the seeds every
    column ran (a tie, one digit being 0.2 points: the smaller weight). Returns (column,
    {column: that mean}, those seeds)."""
    common = sorted(set.intersection(*(set(v) for v in vals.values())))
    if not common:
        raise ValueError(f"the single-stage weights {sorted(vals)} share no seed: nothing to choose on")
    means = {c: statistics.mean(v[s] for s in common) for c, v in vals.items()}
    return min(means, key=lambda c: (means[c], parse_column(c).beta)), means, common


def _column_stats(errs, vals):
    mean, sd, low, high = mean_ci(list(errs.values()))
    # an error rate lies in [0, 1]; with few seeds and a wide spread the t interval can reach past
    # either end (a mean of 4.6, 13.9, 7.8% gives -3.0% to 20.5%), so it is cut to what is possible
    low, high = max(low, 0.0), min(high, 1.0)
    trained = [e for e in errs.values() if e < CHANCE_LINE]
    n = len(errs)
    c_low, c_high = binomial_ci(len(trained), n)
    return dict(n=n, mean=mean, sd=sd, low=low, high=high, per_seed={str(s): e for s, e in errs.items()},
                val_per_seed={str(s): v for s, v in vals.items()}, mean_val=statistics.mean(vals.values()),
                left_chance=len(trained), left_chance_low=c_low, left_chance_high=c_high,
                trained_mean=statistics.mean(trained) if trained else None)


def _cells(rows, across_depths, across_cells=False, pools=()):
    """{cell: {column: ({seed: test error}, {seed: validation error})}}, with the across-depths
    and pooled cells (``pools``: (name, member cells); a pool of fewer than two present cells is
    left out)."""
    cells = {}
    for r in rows:
        c = cells.setdefault(r["cell"], {}).setdefault(r["column"], ({}, {}))
        c[0][r["seed"]], c[1][r["seed"]] = r["test_error"], r["best_val_error"]
    own = list(cells)
    if across_depths:
        # the paper's claim that a deeper thin student does better at equal cost, on the method
        # that trains at every depth: FitNets' errors, each depth against the shallowest
        fitnets = {cell: cols["fitnet"] for cell, cols in cells.items() if "fitnet" in cols}
        if len(fitnets) > 1:
            cells[ACROSS_DEPTHS] = dict(sorted(fitnets.items(), key=lambda kv: int(kv[0].split()[1])))
    for name, members in tuple(pools) + (((ACROSS_CELLS, own),) if across_cells else ()):
        present = [c for c in members if c in own]
        if len(present) > 1:
            cells[name] = _pool({c: cells[c] for c in present})
    return cells


def _pool(cells):
    """One cell of every column's runs in ``cells``, each seed keyed by its cell ('cell/seed')."""
    pooled = {}
    for cell, cols in cells.items():
        for col, (errs, vals) in cols.items():
            e, v = pooled.setdefault(col, ({}, {}))
            e.update({f"{cell}/{s}": x for s, x in errs.items()})
            v.update({f"{cell}/{s}": x for s, x in vals.items()})
    return pooled


def _choose(cols, stats):
    """The single-stage column chosen from its hint-weight grid (added to ``cols`` and ``stats``
    as 'single-stage'); returns the 'chosen' record ({} without a grid)."""
    grid = {c: v for c, (_, v) in cols.items() if parse_column(c).grid_member}
    if not grid:
        return {}
    best, means, common = choose_hint_weight(grid)
    method = parse_column(best).method
    stats[method] = dict(stats[best], chosen=best)
    cols[method] = cols[best]
    return {method: best, "by": "lowest mean validation error over the seeds every weight ran (a tie: the smaller "
                                "weight)", "validation": means, "seeds": common,
            "test": {c: statistics.mean(cols[c][0][s] for s in common) for c in grid}}


def summarize(rows, experiment="init", smoke=False):
    """{cell: {"columns": {column: stats}, "pairs": [comparison], "chosen": {...}}} of the
    rows' test errors over seeds. stats: mean, sd, 95% t interval of the mean, every seed's
    value, the validation errors, and how many seeds left chance (test error below
    CHANCE_LINE) with its exact binomial interval and the mean error of those runs. Each
    pair (the experiment's ``pairs``): the paired difference (a - b, per seed) with its 95% t
    interval and a verdict only when the interval excludes zero. A grid of single-stage hint
    weights gives the single-stage column: the weight with the lowest mean validation error
    over the seeds every weight ran (never the test error; a tie goes to the smaller weight);
    "chosen" has each weight's mean validation and test errors over those seeds."""
    exp = EXPERIMENTS[experiment]
    out = {}
    repeated = {ACROSS_DEPTHS, ACROSS_CELLS} | {name for name, _ in exp.pools}
    for cell, cols in _cells(rows, exp.across_depths, exp.across_cells, exp.pools).items():
        stats = {col: _column_stats(dict(sorted(e.items())), dict(sorted(v.items()))) for col, (e, v) in cols.items()}
        chosen = _choose(cols, stats)
        present = list(stats)
        pairs = [compare(a, cols[a][0], b, cols[b][0], smoke) for a, b in exp.pairs(present)
                 if a in present and b in present]
        out[cell] = dict(columns=stats, pairs=pairs, chosen=chosen, smoke=smoke,
                         repeats=cell in repeated)
    _correct([p for s in out.values() for p in s["pairs"]], smoke)
    return out


def _correct(pairs, smoke):
    """Holm's correction over ``pairs`` (one experiment's tests), and their verdicts."""
    tested = [p for p in pairs if p["n"] > 1]
    for p, adj in zip(tested, holm([p["p"] for p in tested])):
        p.update(p_holm=adj, family=len(tested))
    for p in pairs:
        p["verdict"] = _verdict(p, smoke)


def compare(a, errs_a, b, errs_b, smoke=False):
    """Comparison of two columns over the seeds both ran: the mean of d = err_a - err_b with
    its 95% t interval and the seeds where each is lower; the test (a paired t test, or
    Fisher's exact test of the counts that left chance when any seed of either did not) with
    its p-value; and the verdict, for a family of this one test (``summarize`` corrects an
    experiment's tests together)."""
    p = paired_difference(errs_a, errs_b)
    seeds = p["seeds"]
    k_a, k_b = (sum(errs[s] < CHANCE_LINE for s in seeds) for errs in (errs_a, errs_b))
    counts = k_a < len(seeds) or k_b < len(seeds)
    pval = fisher_exact(k_a, len(seeds), k_b, len(seeds)) if counts else t_test_p(p["mean"], p["sd"], p["n"])
    out = dict(a=a, b=b, n=p["n"], mean_diff=p["mean"], sd_diff=p["sd"], low=p["low"], high=p["high"],
               a_wins=p["a_lower"], b_wins=p["b_lower"], test="fisher" if counts else "t", p=pval,
               a_left_chance=k_a, b_left_chance=k_b, p_holm=pval, family=int(p["n"] > 1))
    out["verdict"] = _verdict(out, smoke)
    return out


def _verdict(p, smoke):
    n = p["n"]
    if smoke:
        return "smoke run: no verdict"
    if n < 2:
        return "one seed: no verdict"
    if p["test"] == "fisher":
        if p["p_holm"] < ALPHA:
            more = p["a"] if p["a_left_chance"] > p["b_left_chance"] else p["b"]
            return f"{column_label(more)} leaves chance more often"
        return f"no detectable difference in leaving chance at {n} seeds"
    if p["p_holm"] < ALPHA:
        return f"{column_label(p['a'] if p['mean_diff'] < 0 else p['b'])} better"
    bound = 100 * max(abs(p["low"]), abs(p["high"]))
    return f"no detectable difference at {n} seeds (95% CI within {bound:.2f} points either way)"
