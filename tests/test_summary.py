"""The statistics of a study's results (tinyfit.summary) and their tables (tinyfit.report),
against values worked out by hand."""
import pytest

from tinyfit.report import format_markdown
from tinyfit.summary import compare, summarize


def test_paired_comparison_gives_a_verdict_only_when_the_interval_excludes_zero():
    tie = compare("backprop", {0: .02, 1: .03, 2: .01}, "kd", {0: .03, 1: .02, 2: .02})
    assert tie["verdict"].startswith("no detectable difference at 3 seeds (95% CI within ")
    assert tie["a_wins"] == 2 and tie["b_wins"] == 1 and tie["test"] == "t"
    # d = -0.010, -0.011, -0.009: interval [-0.0125, -0.0075] (tests/test_stats.py by hand)
    real = compare("backprop", {0: .010, 1: .020, 2: .031}, "kd", {0: .020, 1: .031, 2: .040})
    assert real["verdict"] == "backprop better" and real["a_wins"] == 3
    assert real["mean_diff"] == pytest.approx(-0.01) and real["high"] == pytest.approx(-0.007516, abs=1e-6)
    # a mean difference larger than its standard deviation is not enough with 3 seeds:
    # d = 0.03, 0.01, 0.05 has mean 0.03 > sd 0.02, but its interval is 0.03 +- 0.0497
    weak = compare("backprop", {0: .13, 1: .11, 2: .15}, "kd", {0: .10, 1: .10, 2: .10})
    # an undetected difference is given with its interval's bound: |0.03 +- 0.0497| < 8 points
    assert weak["verdict"] == "no detectable difference at 3 seeds (95% CI within 7.97 points either way)"
    assert compare("backprop", {0: .5}, "kd", {0: .1})["verdict"] == "one seed: no verdict"
    assert compare("backprop", {0: .5, 1: .6}, "kd", {0: .1, 1: .1}, smoke=True)["verdict"] == "smoke run: no verdict"


def _rows(cell, errs, vals=None):
    return [dict(cell=cell, column=m, method=m, seed=s, test_error=e, best_val_error=(vals or {}).get(m, es)[s])
            for m, es in errs.items() for s, e in enumerate(es)]


def test_summary_counts_runs_that_left_chance_with_exact_intervals():
    rows = _rows("init code", {"backprop": (.91, .909, .91, .911, .909), "kd": (.909, .14, .909, .08, .91),
                               "fitnet": (.058, .063, .075, .06, .07)})
    s = summarize(rows)["init code"]
    bp, kd, fn = (s["columns"][m] for m in ("backprop", "kd", "fitnet"))
    assert (bp["left_chance"], kd["left_chance"], fn["left_chance"]) == (0, 2, 5)
    assert kd["left_chance_low"] == pytest.approx(0.0527, abs=1e-4)   # 2 of 5 (test_stats)
    assert kd["trained_mean"] == pytest.approx(0.11) and bp["trained_mean"] is None
    assert kd["mean"] == pytest.approx((.909 + .14 + .909 + .08 + .91) / 5)
    assert [p["a"] + "-" + p["b"] for p in s["pairs"]] == ["backprop-kd", "backprop-fitnet", "kd-fitnet"]
    md = format_markdown(summarize(rows))
    assert "| init code | KD | " in md and "2 of 5 (95% CI 5-85%)" in md and "| backprop - KD |" in md


def test_an_error_interval_never_reaches_past_zero_or_one_hundred_percent():
    # mean 8.77%, sd 4.72: the t interval (t = 4.303 at 2 degrees of freedom) is -2.97% to 20.50%
    s = summarize(_rows("depth 3", {"kd": (.046, .139, .078), "backprop": (.90, .95, .999)}), "depth")["depth 3"]
    kd, bp = s["columns"]["kd"], s["columns"]["backprop"]
    assert kd["low"] == 0.0 and kd["high"] == pytest.approx(0.2050, abs=1e-4)
    assert bp["high"] == 1.0 and bp["low"] == pytest.approx(0.9497 - 4.303 * 0.04951 / 3 ** 0.5, abs=1e-3)


def test_figure_whiskers_are_cut_like_the_tables_intervals():
    from tinyfit.plots import _ci
    mean, below, above = _ci([90.9, 91.1, 42.6])   # its t interval reaches 145%
    assert mean + above == 100.0 and 0 < mean - below < mean
    assert _ci([5.0])[1:] == (0.0, 0.0)   # one seed: no interval, no whisker


def test_depth_compares_fitnets_across_depths_against_the_shallowest():
    rows = (_rows("depth 3", {"backprop": (.10, .13, .07), "fitnet": (.044, .038, .046)})
            + _rows("depth 9", {"backprop": (.909, .911, .909), "fitnet": (.114, .125, .133)})
            + _rows("depth 5", {"backprop": (.909, .909, .909), "fitnet": (.074, .083, .064)}))
    s = summarize(rows, "depth")
    across = s["FitNets across depths"]
    assert [(p["a"], p["b"]) for p in across["pairs"]] == [("depth 5", "depth 3"), ("depth 9", "depth 3")]
    d9 = across["pairs"][1]   # d = .070, .087, .087 -> mean .08133
    assert d9["mean_diff"] == pytest.approx(0.08133, abs=1e-5) and d9["verdict"] == "depth 3 better"
    assert [p["a"] for p in s["depth 3"]["pairs"]] == ["backprop"]   # the per-depth cells are unchanged
    md = format_markdown(s)
    assert "| FitNets across depths | depth 9 - depth 3 | +8.13 |" in md
    assert "| FitNets across depths | depth" not in md.split("| cell | pair")[0]   # no repeated rows


def test_single_stage_weight_is_chosen_on_validation_never_on_test():
    errs = {"single-stage beta=0.026": (.30, .32), "single-stage beta=0.26": (.10, .12),
            "single-stage beta=2.6": (.2, .2), "fitnet": (.05, .06), "kd": (.5, .5)}
    # beta 0.26 has the lowest test error, beta 2.6 the lowest validation error: 2.6 is chosen
    vals = {"single-stage beta=0.026": (.3, .3), "single-stage beta=0.26": (.4, .4),
            "single-stage beta=2.6": (.1, .1), "fitnet": (.05, .05), "kd": (.5, .5)}
    s = summarize(_rows("init code", errs, vals), "ablate")["init code"]
    assert s["chosen"]["single-stage"] == "single-stage beta=2.6"
    assert s["columns"]["single-stage"]["per_seed"] == {"0": .2, "1": .2}
    pairs = {(p["a"], p["b"]) for p in s["pairs"]}
    assert ("single-stage", "fitnet") in pairs and ("single-stage beta=0.26", "kd") in pairs
    # a tie in validation error goes to the smaller weight, whatever the rows' order
    vals["single-stage beta=0.26"] = vals["single-stage beta=0.026"] = (.1, .1)
    rows = _rows("init code", errs, vals)[::-1]
    assert summarize(rows, "ablate")["init code"]["chosen"]["single-stage"] == "single-stage beta=0.026"


def test_the_hint_weight_is_chosen_on_the_seeds_every_weight_ran():
    # beta 2.6 has no run on seed 2 (it failed, say): the choice is made on seeds 0 and 1, where
    # 0.26 has the lower validation error, though its mean over all its seeds is higher
    errs = {"single-stage beta=0.26": (.1, .1, .1), "single-stage beta=2.6": (.2, .2)}
    vals = {"single-stage beta=0.26": (.30, .30, .90), "single-stage beta=2.6": (.32, .32)}
    ch = summarize(_rows("init code", errs, vals), "ablate")["init code"]["chosen"]
    assert ch["single-stage"] == "single-stage beta=0.26" and ch["seeds"] == [0, 1]
    assert ch["validation"] == {"single-stage beta=0.26": pytest.approx(.30),
                                "single-stage beta=2.6": pytest.approx(.32)}
    assert ch["test"] == {"single-stage beta=0.26": pytest.approx(.1), "single-stage beta=2.6": pytest.approx(.2)}


def test_a_column_with_seeds_at_chance_is_compared_by_counts_with_fishers_exact_test():
    stuck, trained = {0: .91, 1: .90, 2: .91}, {0: .10, 1: .12, 2: .08}
    c = compare("backprop", stuck, "kd", trained)
    # 0 of 3 against 3 of 3: p = 2 / C(6, 3) = 0.1, whatever the t interval of the errors says
    assert c["test"] == "fisher" and c["p"] == pytest.approx(0.1) and (c["a_left_chance"], c["b_left_chance"]) == (0, 3)
    assert c["verdict"] == "no detectable difference in leaving chance at 3 seeds"
    six = compare("backprop", {s: .91 for s in range(6)}, "kd", {s: .1 for s in range(6)})
    assert six["p"] == pytest.approx(2 / 924) and six["verdict"] == "KD leaves chance more often"
    # one seed of one column at chance is enough: the errors are bimodal
    mixed = compare("kd", {0: .1, 1: .9, 2: .1}, "fitnet", {0: .05, 1: .06, 2: .07})
    assert mixed["test"] == "fisher" and mixed["p"] == pytest.approx(1.0)


def test_the_verdicts_of_an_experiment_are_holm_corrected_together():
    # three trained columns on 4 seeds; kd - fitnet alone would be called (p = 0.032 < 0.05), but
    # not as the smallest of three tests in its family (Holm: 3 x 0.032)
    rows = _rows("init code", {"backprop": (.085, .080, .085, .082), "kd": (.080, .085, .078, .090),
                               "fitnet": (.070, .080, .060, .070)})
    s = summarize(rows)["init code"]
    by = {(p["a"], p["b"]): p for p in s["pairs"]}
    kf = by[("kd", "fitnet")]   # d = .010, .005, .018, .020: mean .01325, sd .006994, t 3.789, 3 df
    assert kf["p"] == pytest.approx(0.0322, abs=2e-4) and kf["family"] == 3
    ps = sorted(p["p"] for p in s["pairs"])
    rank = ps.index(kf["p"])
    assert kf["p_holm"] == pytest.approx(max((3 - i) * ps[i] for i in range(rank + 1)), rel=1e-9)
    assert kf["p_holm"] > 0.05 and kf["verdict"].startswith("no detectable difference at 4 seeds")
    assert compare("kd", {i: v for i, v in enumerate((.080, .085, .078, .090))}, "fitnet",
                   {i: v for i, v in enumerate((.070, .080, .060, .070))})["verdict"] == "FitNets (hints + KD) better"
    md = format_markdown(summarize(rows))
    assert "3 tests in this experiment, one family" in md and "| paired t |" in md


def test_the_printed_summary_says_what_the_numbers_are():
    """format_summary's pair lines parsed back: the difference, its interval, which side was lower
    on how many seeds and the verdict are the pair's own, a against b in that order."""
    import re
    from tinyfit.report import format_summary
    rows = _rows("init code", {"backprop": (.085, .080, .085, .082), "kd": (.080, .085, .078, .090),
                               "fitnet": (.070, .080, .060, .070)})
    s = summarize(rows)
    text = format_summary(s, "init")
    line = re.compile(r"  (\S+) - (\S+): ([+-]\d+\.\d\d) points, 95% CI \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\] "
                      r"\(paired over (\d+) seeds; \1 lower in (\d+), \2 lower in (\d+); paired t, p (\S+), "
                      r"Holm (\S+)\): (.+)$")
    got = [line.match(x).groups() for x in text.splitlines() if line.match(x)]
    want = s["init code"]["pairs"]
    assert len(got) == len(want) == 3
    for g, p in zip(got, want):
        assert (g[0], g[1]) == (p["a"], p["b"])
        assert [float(v) for v in g[2:5]] == [round(100 * p[k], 2) for k in ("mean_diff", "low", "high")]
        assert (int(g[5]), int(g[6]), int(g[7])) == (p["n"], p["a_wins"], p["b_wins"])
        assert float(g[8]) == pytest.approx(p["p"], rel=0.05) and g[10] == p["verdict"]
    # kd - fitnet: fitnet lower on all 4 seeds, kd on none
    kf = next(g for g in got if g[:2] == ("kd", "fitnet"))
    assert (kf[6], kf[7]) == ("0", "4")
    assert text.splitlines()[-1] == ("verdicts: Holm-corrected over the 3 tests of this experiment "
                                     "(family-wise error 5%)")


def test_a_smoke_summary_is_marked_as_such_everywhere():
    from tinyfit.report import SMOKE_NOTE, errors_table, format_summary
    rows = _rows("init code", {"backprop": (.91, .90), "kd": (.10, .08)})
    s = summarize(rows, smoke=True)
    assert format_summary(s).splitlines()[0] == SMOKE_NOTE
    assert errors_table(s).startswith(f"**{SMOKE_NOTE}**")
    assert all(p["verdict"] == "smoke run: no verdict" for c in s.values() for p in c["pairs"])
    assert SMOKE_NOTE not in format_summary(summarize(rows))


def test_one_seed_is_shown_without_interval_test_or_family():
    from tinyfit import report
    s = summarize(_rows("init code", {"backprop": [0.0113], "kd": [0.0094], "fitnet": [0.0070]}), "table4")
    assert all(p["family"] == 0 and p["verdict"] == "one seed: no verdict" for p in s["init code"]["pairs"])
    text = report.format_summary(s)
    assert "backprop - kd: +0.19 points on the one seed (no interval, no verdict)" in text
    assert "nan" not in text and "n/a" not in text and "Holm-corrected" not in text
    md = report.format_markdown(s)
    assert "| init code | backprop | 1.13% | one seed |" in md and md.endswith("One seed: no tests, no verdicts.")
    assert "| init code | backprop - KD | +0.19 | one seed | - | - | - | one seed: no verdict |" in md


def test_pooled_cells_hold_their_members_runs_and_join_the_family():
    from tinyfit.experiments import DATA_POOLS
    from tinyfit.report import format_summary
    members = dict(DATA_POOLS)
    assert set(members["class-balanced sets pooled"]) == {"data embedded", "data rule-25000", "data balanced-3500-s0",
                                                        "data balanced-3500-s1"}
    assert set(members["random sets pooled"]) == {f"data random-{n}-s{k}" for n in (3500, 10000, 25000)
                                                  for k in (0, 1)} | {"data all"}
    stuck, out = (.9, .9, .9), (.1, .12, .08)
    rows = (_rows("data embedded", {"backprop": stuck, "fitnet": out})
            + _rows("data balanced-3500-s0", {"backprop": stuck, "fitnet": out})
            + _rows("data random-3500-s0", {"backprop": out, "fitnet": (.05, .06, .07)}))
    s = summarize(rows, "data")
    # one random set present: no random pool; the two balanced sets pooled, seeds keyed by cell
    assert list(s) == ["data embedded", "data balanced-3500-s0", "data random-3500-s0", "class-balanced sets pooled"]
    pool = s["class-balanced sets pooled"]
    assert pool["repeats"] and pool["columns"]["backprop"]["per_seed"] == {
        f"data {c}/{k}": .9 for c in ("embedded", "balanced-3500-s0") for k in range(3)}
    (p,) = pool["pairs"]
    # 0 of 6 against 6 of 6 (p = 2 / C(12, 6)), Holm over the 4 tests of the experiment
    assert (p["test"], p["a_left_chance"], p["b_left_chance"], p["n"]) == ("fisher", 0, 6, 6)
    assert p["p"] == pytest.approx(2 / 924) and p["family"] == 4 and p["p_holm"] == pytest.approx(4 * 2 / 924)
    assert p["verdict"] == "FitNets (hints + KD) leaves chance more often"
    assert all(q["verdict"].startswith("no detectable") for c in list(s)[:2] for q in s[c]["pairs"])
    assert "class-balanced sets pooled" not in format_markdown(s).split("| cell | pair")[0]
    assert "class-balanced sets pooled\n  backprop - fitnet: +80.00 points" in format_summary(s)


def test_which_side_leaves_chance_more_often_and_where_chance_begins():
    from tinyfit.summary import CHANCE_LINE
    six = range(6)
    # a (listed first) leaves chance, b does not: the verdict names a
    c = compare("fitnet", {s: .1 for s in six}, "kd", {s: .9 for s in six})
    assert (c["a_left_chance"], c["b_left_chance"]) == (6, 0)
    assert c["verdict"] == "FitNets (hints + KD) leaves chance more often"
    # an error exactly at the line is at chance
    at = compare("kd", {s: CHANCE_LINE for s in six}, "fitnet", {s: .1 for s in six})
    assert at["a_left_chance"] == 0 and at["test"] == "fisher"
    st = summarize(_rows("init code", {"kd": [CHANCE_LINE] * 3, "fitnet": (.1, .1, .1)}))["init code"]["columns"]
    assert st["kd"]["left_chance"] == 0 and st["kd"]["trained_mean"] is None


def test_two_seeds_are_tested_and_corrected_one_is_not():
    two = summarize(_rows("init code", {"kd": (.10, .12), "fitnet": (.05, .06)}))["init code"]["pairs"][0]
    assert two["family"] == 1 and two["n"] == 2 and two["verdict"] != "one seed: no verdict"
    assert two["sd_diff"] == pytest.approx(0.007071, abs=1e-6)   # d = .05, .06
    # three pairs of two seeds each: one family of three (not three families of one)
    three = summarize(_rows("init code", {"backprop": (.30, .31), "kd": (.10, .12), "fitnet": (.05, .06)}))
    assert [p["family"] for p in three["init code"]["pairs"]] == [3, 3, 3]
    smallest = min(p["p"] for p in three["init code"]["pairs"])
    assert min(p["p_holm"] for p in three["init code"]["pairs"]) == pytest.approx(3 * smallest)
    c = compare("kd", {0: .10, 1: .12}, "fitnet", {0: .05, 1: .06})
    assert c["family"] == 1 and c["verdict"].startswith("no detectable difference at 2 seeds")


def test_pairs_compare_test_errors_and_columns_keep_every_statistic():
    # validation errors opposite to the test errors: the pair must follow the test errors
    rows = _rows("init code", {"kd": (.20, .22, .21), "fitnet": (.10, .11, .12)},
                 {"kd": (.01, .01, .01), "fitnet": (.50, .50, .50)})
    s = summarize(rows)["init code"]
    (p,) = s["pairs"]
    assert p["mean_diff"] == pytest.approx(0.1) and p["a_wins"] == 0 and p["b_wins"] == 3
    kd = s["columns"]["kd"]
    assert kd["sd"] == pytest.approx(0.01) and kd["mean_val"] == pytest.approx(0.01)
    assert kd["val_per_seed"] == {"0": .01, "1": .01, "2": .01} and kd["per_seed"] == {"0": .20, "1": .22, "2": .21}


def test_the_pooled_cell_of_every_cell_and_the_depth_order():
    from tinyfit.summary import ACROSS_CELLS, ACROSS_DEPTHS
    rows = (_rows("teacher 0", {"kd": (.1, .1), "fitnet": (.2, .2)}) + _rows("teacher 1", {"kd": (.9, .9),
                                                                                           "fitnet": (.1, .1)}))
    s = summarize(rows, "teachers")
    assert s[ACROSS_CELLS]["repeats"] and s[ACROSS_CELLS]["columns"]["kd"]["n"] == 4
    assert ACROSS_CELLS not in summarize(_rows("teacher 0", {"kd": (.1, .1), "fitnet": (.2, .2)}), "teachers")
    one = summarize(_rows("depth 3", {"fitnet": (.1, .1)}), "depth")
    assert ACROSS_DEPTHS not in one
    deep = summarize(_rows("depth 11", {"fitnet": (.3, .3)}) + _rows("depth 3", {"fitnet": (.1, .1)}), "depth")
    assert list(deep[ACROSS_DEPTHS]["columns"]) == ["depth 3", "depth 11"]


def test_the_chosen_weight_is_recorded_and_an_empty_choice_is_refused():
    from tinyfit.summary import choose_hint_weight
    errs = {"single-stage beta=0.26": (.1, .1), "single-stage beta=2.6": (.2, .2)}
    s = summarize(_rows("init code", errs), "ablate")["init code"]
    assert s["columns"]["single-stage"]["chosen"] == "single-stage beta=0.26"
    assert s["chosen"]["by"] == ("lowest mean validation error over the seeds every weight ran (a tie: the smaller "
                                 "weight)")
    with pytest.raises(ValueError) as e:
        choose_hint_weight({"single-stage beta=0.26": {0: .1}, "single-stage beta=2.6": {1: .1}})
    assert str(e.value) == ("the single-stage weights ['single-stage beta=0.26', 'single-stage beta=2.6'] share no "
                            "seed: nothing to choose on")
