"""The experiments table: each entry's plan (its runs, their folders, cells and columns) and
that it gives exactly the runs of every published results file."""
import json
import os

import numpy as np
import pytest

from tinyfit.experiments import EXPERIMENTS, plan
from tinyfit.pipeline import METHODS
from tinyfit.report import FIGURES

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results")


def test_plans_have_distinct_runs_and_check_their_arguments():
    for exp, n in (("init", 2 * 3 * 3), ("depth", 4 * 3 * 3), ("curves", 3 * 3), ("ablate", 2 * 3 * 9),
                   ("position", 3 * 5), ("gradients", 3 * 3), ("floor", 3 * 6), ("deep-floor", 3 * 4)):
        runs = plan(exp, [0, 1, 2])
        assert len(runs) == n and len({r.name for r in runs}) == n, exp
    for exp in ("init", "depth", "curves", "gradients"):
        assert {r.method for r in plan(exp, [0])} == set(METHODS)
    assert {r.init for r in plan("init", [0])} == {"code", "glorot"}
    # runs shared between experiments are the same runs, in the init experiment's folder
    init_runs = {r for r in plan("init", [0, 1])}
    assert {r for r in plan("ablate", [0, 1]) if r.experiment == "init"} == init_runs
    assert {r for r in plan("curves", [0, 1])} == {r for r in init_runs if r.init == "code"}
    assert [r.experiment for r in plan("position", [0]) if not r.guided] == ["init"]  # h3: FitNets itself
    # deep-floor: the deepest depth student, its official-floor runs the depth experiment's own
    deep = plan("deep-floor", [0], depths=[5, 7])
    assert {r.depth for r in deep} == {7} and {r for r in deep if not r.floor} <= set(plan("depth", [0], depths=[7]))
    # balance: the unchanged sets' first seeds are the data experiment's own runs, each cell one parent set
    from tinyfit.experiments import BALANCE
    bal = plan("balance", list(range(6)))
    assert len(bal) == 24 and {r.method for r in bal} == {"backprop"}
    assert {r for r in bal if r.experiment == "data"} == {r for r in plan("data", [0, 1, 2]) if r.method == "backprop"
                                                         and r.data in ("embedded", "random-3500-s0")}
    assert {BALANCE.place(r) for r in bal} == {("data embedded", "backprop"),
                                               ("data embedded", "backprop classes=skewed"),
                                               ("data random-3500-s0", "backprop"),
                                               ("data random-3500-s0", "backprop classes=rebalanced")}
    with pytest.raises(ValueError, match="distinct"):
        plan("init", [0, 0])
    with pytest.raises(ValueError, match="experiment must be one of"):
        plan("width", [0])


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if os.path.exists(os.path.join(RESULTS, n, "results.json"))])
def test_the_plan_gives_exactly_the_runs_of_the_published_results(name):
    with open(os.path.join(RESULTS, name, "results.json")) as f:
        info = json.load(f)
    rows = info["results"]
    depths = sorted({r["depth"] for r in rows if r.get("depth")}) or (3, 5, 7, 9)
    place = EXPERIMENTS[name].place or (lambda r: (r.cell, r.column))
    methods = tuple(info.get("methods", METHODS))   # a part of an experiment says which methods it holds
    assert [(r.name, *place(r)) for r in plan(name, info["seeds"], info["init"], depths, methods)] == \
        [(r["run"], r["cell"], r["column"]) for r in rows]
    # and each run trains what the published one trained
    fields = ("experiment", "seed", "init", "depth", "width", "guided", "beta")
    assert [tuple(getattr(r, k) for k in fields) for r in plan(name, info["seeds"], info["init"], depths, methods)] \
        == [tuple(r[k] for k in fields) for r in rows]


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if os.path.exists(os.path.join(RESULTS, n, "results.json"))])
def test_the_pairs_compared_are_the_published_ones(name):
    from tinyfit.summary import summarize
    with open(os.path.join(RESULTS, name, "results.json")) as f:
        info = json.load(f)
    now = summarize(info["results"], name)
    # every published cell, compared by the same pairs (a results file may predate a pooled cell)
    assert {c: [(p["a"], p["b"]) for p in now[c]["pairs"]] for c in info["summary"]} == \
        {c: [(p["a"], p["b"]) for p in s["pairs"]] for c, s in info["summary"].items()}


def test_every_experiment_is_a_complete_declaration():
    for name, e in EXPERIMENTS.items():
        assert e.name == name and e.question.endswith("?") and e.summary and e.seeds
        assert e.figure in FIGURES, name
        runs = plan(name, list(e.seeds))
        assert runs and {r.seed for r in runs} == set(e.seeds)
        assert all(r.experiment in EXPERIMENTS for r in runs)


def test_an_unknown_experiment_is_refused_not_run_as_another():
    with pytest.raises(ValueError, match="experiment must be one of init, depth"):
        plan("width", [0])
    from tinyfit.report import figure_of
    with pytest.raises(KeyError):
        figure_of("width", [], {}, "x.png", "split", 1)


def test_plan_arguments_are_checked_by_name():
    from tinyfit.pipeline import ConfigError
    for seeds in ([-1], [0, 0], [], [1.5]):
        with pytest.raises(ConfigError) as e:
            plan("init", seeds)
        assert e.value.field == "seeds" and e.value.reason == f"must be distinct non-negative integers, got {seeds}"
    for depths in ([2], [], [3.5]):
        with pytest.raises(ConfigError) as e:
            plan("depth", [0], depths=depths)
        assert e.value.field == "depths"
        assert e.value.reason == f"must be integers >= 3 (two poolings and a last layer), got {depths}"


def test_the_floor_depth_experiment_keeps_the_depths_asked_for_among_its_own():
    depths = lambda ds: sorted({r.depth for r in plan("floor-depth", [0], depths=ds)})
    assert depths([5]) == [5] and depths([3, 7, 9]) == [7] and depths([3, 9]) == [5, 7] == depths([5, 7])


def test_guided_positions_follow_the_pooling_and_say_nothing_when_a_regressor_fits():
    from tinyfit.experiments import guided_positions
    ceil, floor = guided_positions("code", "ceil"), guided_positions("code", "floor")
    assert [k for _, k, _ in ceil] != [k for _, k, _ in floor]
    assert all(why == "" for _, k, why in ceil + floor if k is not None)
    assert all(why.startswith("no convolutional regressor fits") for _, k, why in ceil if k is None)


def test_the_balance_experiment_refuses_to_place_a_run_not_its_own():
    from tinyfit.experiments import Run
    with pytest.raises(ValueError) as e:
        EXPERIMENTS["balance"].place(Run("init", "kd", 0))
    assert str(e.value) == "run init-code/seed0/kd is not one of the balance experiment's"


def test_the_full_file_experiments_spend_the_studys_810_steps_as_whole_epochs_of_each_set():
    # docs/study.md section 13: 3,500 digits 30 epochs, 10,000: 10, 25,000: 4, 50,000: 2; stage 1 a third
    budget = EXPERIMENTS["data"].budget
    for digits, epochs, hints in ((3500, 30, 10), (10000, 10, 3), (25000, 4, 1), (50000, 2, 1)):
        b = EXPERIMENTS["data"].budget_of(budget, digits // 128)
        assert (b.student, b.hints, b.stage2, b.teacher) == (epochs, hints, epochs - hints, budget.teacher), digits


def test_a_run_builds_the_student_it_names():
    from tinyfit.experiments import Run
    assert Run("init", "kd", 0).student().guided == "h3"
    assert Run("position", "fitnet", 0, guided="h1").student().guided == "h1"
    thin = Run("depth", "fitnet", 0, depth=5, width=12).student()
    model = thin.build(0.005, np.random.default_rng(0))
    assert thin.key == (5,) and thin.name == "thin student, 5 conv layers of 12 channels"
    assert sum(n.startswith("h") for n in model.layer_names) == 5 and thin.guided in model.layer_names
