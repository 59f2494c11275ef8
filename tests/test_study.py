"""The study's wiring: depth students' cost and layer placement, run plans, seeds, the paired
comparison, the fixed full-MNIST split, and --quick studies with --resume (not the numbers)."""
import importlib.util
import json
import os

import pytest

from tinyfit.pipeline import METHODS
from tinyfit.study import compare, format_markdown, plan, summarize

HERE = os.path.dirname(os.path.abspath(__file__))


def load_example(name):
    import sys
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    with pytest.raises(ValueError, match="distinct"):
        plan("init", [0, 0])
    with pytest.raises(ValueError, match="experiment must be one of"):
        plan("width", [0])


def test_paired_comparison_gives_a_verdict_only_when_the_interval_excludes_zero():
    tie = compare("backprop", {0: .02, 1: .03, 2: .01}, "kd", {0: .03, 1: .02, 2: .02})
    assert tie["verdict"] == "no detectable difference at 3 seeds" and tie["a_wins"] == 2 and tie["b_wins"] == 1
    # d = -0.010, -0.011, -0.009: interval [-0.0125, -0.0075] (tests/test_stats.py by hand)
    real = compare("backprop", {0: .010, 1: .020, 2: .031}, "kd", {0: .020, 1: .031, 2: .040})
    assert real["verdict"] == "backprop better" and real["a_wins"] == 3
    assert real["mean_diff"] == pytest.approx(-0.01) and real["high"] == pytest.approx(-0.007516, abs=1e-6)
    # a mean difference larger than its standard deviation is not enough with 3 seeds:
    # d = 0.03, 0.01, 0.05 has mean 0.03 > sd 0.02, but its interval is 0.03 +- 0.0497
    weak = compare("backprop", {0: .13, 1: .11, 2: .15}, "kd", {0: .10, 1: .10, 2: .10})
    assert weak["verdict"] == "no detectable difference at 3 seeds"
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


@pytest.mark.parametrize("experiment", ["init", "depth", "curves", "ablate", "position", "gradients", "floor",
                                        "deep-floor"])
def test_quick_study_then_resume(experiment, tmp_path, capsys, monkeypatch):
    study = load_example("fitnets_study")
    out = str(tmp_path / "study")
    args = [experiment, "--quick", "--seeds", "0,1", "--out", out, "--no-progress"]
    info = study.main(args)
    rows = info["results"]
    runs = plan(experiment, [0, 1])
    assert [r["run"] for r in rows] == [r.name for r in runs]
    for r in rows:
        assert 0 <= r["test_error"] <= 1 and r["history"]
    # seeds are distinct runs: different initial weights give different training losses
    by_seed = {s: [r["history"][0]["train_loss"] for r in rows if r["seed"] == s] for s in (0, 1)}
    assert by_seed[0] != by_seed[1]
    exp_dir = os.path.join(out, experiment)
    saved = json.load(open(os.path.join(exp_dir, "results.json")))
    assert len(saved["results"]) == len(runs) and saved["summary"]
    md = open(os.path.join(exp_dir, "summary.md")).read()
    if experiment in ("init", "depth", "curves"):
        assert md.count("| backprop - KD |") == sum(not s["repeats"] for s in saved["summary"].values())
    assert "| mean test error | 95% CI |" in md
    assert "SMOKE RUN" in md and "better" not in md  # a smoke run's numbers mean nothing: no verdicts
    text = capsys.readouterr().out
    assert "SMOKE RUN" in text and "better" not in text
    assert ("paired over 2 seeds" in text) == (experiment != "gradients")  # gradients compares no pairs
    if experiment == "depth":
        assert "5 maxout conv layers" in text and "multiplications per example" in text
    try:
        import matplotlib  # noqa: F401
        assert os.path.getsize(os.path.join(exp_dir, f"{experiment}.png")) > 1000
    except ImportError:
        pass
    if experiment == "gradients":  # every step's trace is recorded: nothing resumed, all reused
        again = study.main(args + ["--resume"])
        assert [r["trace"] for r in again["results"]] == [r["trace"] for r in rows]
        # but never a trace recorded with another probe
        import tinyfit.study
        from tinyfit.pipeline import SettingsError
        monkeypatch.setattr(tinyfit.study, "PROBE", tinyfit.study.PROBE - 1)
        with pytest.raises(SettingsError, match=r"gradients/init-code/seed0/backprop/result.json was made with "
                                                r"other settings: recorder="):
            study.main(args + ["--resume"])
        return
    # --resume skips every finished run; a run whose result file is lost comes back from its
    # finished stages and checkpoints without training again
    os.remove(os.path.join(out, runs[-1].experiment, runs[-1].name, "result.json"))
    stamps = {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
              for d, _, files in os.walk(out) for f in files if f.endswith(".npz")}
    again = study.main(args + ["--resume"])
    text = capsys.readouterr().out
    assert text.count("finished earlier") >= len(runs)
    assert [r["test_error"] for r in again["results"]] == [r["test_error"] for r in rows]
    # nothing was trained: no model or checkpoint file was written again
    assert stamps == {p: os.stat(p).st_mtime_ns for p in stamps}
    if experiment == "init":  # a finished run is never reused under other settings
        from tinyfit.pipeline import SettingsError
        with pytest.raises(SettingsError, match=r"init-code/seed0/kd/result.json was made with other settings: "
                                                r"tau=3.0 \(now 5.0\)"):
            study.main(args + ["--resume", "--tau", "5"])
    if experiment == "init":  # the shared teacher is reused only with the settings it was trained with
        with pytest.raises(ValueError, match=r"teacher.model.npz was made with other settings: batch_size=128 "
                                             r"\(now 64\)"):
            study.main(args + ["--batch-size", "64"])


def test_study_and_example_reject_bad_output_folders_and_seeds(capsys):
    study = load_example("fitnets_study")
    ex = load_example("mnist_fitnet")
    for parse, extra in ((study.parse_args, ["init"]), (ex.parse_args, [])):
        with pytest.raises(SystemExit):
            parse(extra + ["--out", "/dev/null"])
        assert "--out /dev/null: exists and is not a folder" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            parse(extra + ["--out", "/dev/null/run"])
        assert "--out /dev/null/run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--seed", "-1"])
    assert "--seed must be an integer in [0, 2**63)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--seed", str(2 ** 64)])
    assert "--seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        study.parse_args(["init", "--seeds", "1,1"])
    assert "--seeds must be distinct" in capsys.readouterr().err
    for args, said in ((["depth", "--depths", "2,5"], "--depths must be integers >= 3"),
                       (["init", "--jobs", "0"], "--jobs must be a positive number of worker processes, got 0"),
                       (["init", "--jobs", "2", "--scheduler", "tcp://h:1"], "give either jobs"),
                       (["init", "--epochs", "-3"], "--epochs must be a positive integer, got -3")):
        with pytest.raises(SystemExit):
            study.parse_args(args)
        assert said in capsys.readouterr().err, args


def test_a_study_on_a_folder_another_process_holds_is_refused(tmp_path):
    import subprocess
    import sys
    from tinyfit.files import FolderLock
    out = str(tmp_path / "study")
    script = os.path.join(HERE, "..", "examples", "fitnets_study.py")
    with FolderLock(out):
        r = subprocess.run([sys.executable, script, "init", "--quick", "--seeds", "0", "--out", out, "--resume"],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{out} is in use by process {os.getpid()}" in r.stderr
