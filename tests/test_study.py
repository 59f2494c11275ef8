"""The study's wiring: depth students' cost and layer placement, run plans, seeds, the paired
comparison, the fixed full-MNIST split, and --quick studies with --resume (not the numbers)."""
import importlib.util
import json
import os

import pytest

from tinyfit.experiments import EXPERIMENTS, plan

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_DIR = os.path.join(HERE, "..", "..", "shared", "data", "mnist")


def load_example(name):
    import sys
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_quick_study_then_resume(experiment, tmp_path, capsys, monkeypatch):
    study = load_example("fitnets_study")
    out = str(tmp_path / "study")
    args = [experiment, "--quick", "--seeds", "0,1", "--out", out, "--no-progress"]
    if EXPERIMENTS[experiment].full_data:   # it runs on the full files: they are beside the checkout, or it skips
        if not os.path.isdir(MNIST_DIR):
            pytest.skip("the full MNIST files are not in ../shared/data/mnist")
        args += ["--data-dir", MNIST_DIR]
    if len(plan(experiment, [0, 1])) > 40:   # a large plan smoke-runs one method: the suite stays short
        args += ["--methods", "backprop"]
    info = study.main(args)
    rows = info["results"]
    methods = ("backprop",) if "--methods" in args else ("backprop", "kd", "fitnet")
    runs = plan(experiment, [0, 1], methods=methods)
    assert [r["run"] for r in rows] == [r.name for r in runs]
    for r in rows:
        assert 0 <= r["test_error"] <= 1 and r["history"]
    # seeds are distinct runs: different initial weights give different training losses
    by_seed = {s: [r["history"][0]["train_loss"] for r in rows if r["seed"] == s] for s in (0, 1)}
    assert by_seed[0] != by_seed[1]
    exp_dir = os.path.join(out, experiment)
    saved = json.load(open(os.path.join(exp_dir, "results.json")))
    assert len(saved["results"]) == len(runs) and saved["summary"]
    # runs on training subsets: each set's class profile is recorded beside them
    assert set(saved.get("training_sets", {})) == {r.data for r in runs if r.data}
    for key, prof in saved.get("training_sets", {}).items():
        assert sum(prof["class_counts"]) == prof["digits"] > 0, key
    md = open(os.path.join(exp_dir, "summary.md")).read()
    if experiment in ("init", "depth", "curves"):
        assert md.count("| backprop - KD |") == sum(not s["repeats"] for s in saved["summary"].values())
    assert "| mean test error | 95% CI |" in md
    assert "SMOKE RUN" in md and "better" not in md  # a smoke run's numbers mean nothing: no verdicts
    text = capsys.readouterr().out
    assert "SMOKE RUN" in text and "better" not in text
    pairs = any(s["pairs"] for s in saved["summary"].values())   # a recording experiment compares none
    assert ("paired over 2 seeds" in text) == pairs
    assert pairs == (not EXPERIMENTS[experiment].recorder and len(methods) > 1)
    if experiment == "depth":
        assert "5 maxout conv layers" in text and "multiplications per example" in text
    try:
        import matplotlib  # noqa: F401
        assert os.path.getsize(os.path.join(exp_dir, f"{experiment}.png")) > 1000
    except ImportError:
        pass
    if EXPERIMENTS[experiment].recorder:  # every step's trace is recorded: nothing resumed, all reused
        again = study.main(args + ["--resume"])
        assert [r["trace"] for r in again["results"]] == [r["trace"] for r in rows]
        # but never a trace recorded with another probe
        from dataclasses import replace
        from tinyfit.pipeline import SettingsError
        exp = EXPERIMENTS[experiment]
        monkeypatch.setitem(EXPERIMENTS, experiment, replace(exp, recorder=replace(exp.recorder,
                                                                                   probe=exp.recorder.probe - 1)))
        with pytest.raises(SettingsError, match=f"{runs[0].experiment}/{runs[0].name}/result.json was made with "
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


def test_an_experiment_on_the_full_files_without_them_is_one_line(tmp_path):
    import subprocess
    import sys
    for name in (e.name for e in EXPERIMENTS.values() if e.full_data):
        r = subprocess.run([sys.executable, os.path.join(HERE, "..", "examples", "fitnets_study.py"), name, "--quick",
                            "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [
            f"error: {name} runs on the full MNIST files: give --data-dir DIR (a folder with the four standard IDX "
            "files) or --download"]
        assert not os.path.exists(tmp_path / "s")


@pytest.mark.parametrize("resume", [False, True])
def test_runs_another_experiment_defines_are_reused_resume_or_not_its_own_only_with_resume(resume, monkeypatch):
    # every run has a finished result on disk; which of them are trained again?
    from tinyfit import study
    from tinyfit.executors import InProcessExecutor
    runs = plan("floor", [0, 1])
    assert {r.experiment for r in runs} == {"init", "floor"}
    looked_up, trained = [], []
    monkeypatch.setattr(study, "_finished", lambda run, *a: looked_up.append(run.name) or {"run": run.name})
    monkeypatch.setattr(study, "train_run", lambda run, *a, **k: trained.append(run.name) or {"run": run.name})
    rows, n = study._train_runs(runs, "floor", "/nowhere/floor", None, None, {0: (None, None)}, resume,
                                InProcessExecutor(), None, log=lambda *m: None)
    own = [r.name for r in runs if r.experiment == "floor"]
    shared = [r.name for r in runs if r.experiment == "init"]
    assert sorted(trained) == ([] if resume else sorted(own)) and n == len(trained)
    assert sorted(looked_up) == sorted(shared + (own if resume else []))
    assert set(rows) == {r.name for r in runs}
