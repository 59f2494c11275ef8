"""Published numbers are generated: every marked table and value of the README and docs equals
what its results file under docs/results gives now, and the renderer itself."""
import glob
import json
import os

import numpy as np
import pytest

from tinyfit import report

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "results")
DOCUMENTS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_published_numbers_match_their_results_files(doc):
    stale = report.stale(open(doc).read(), RESULTS)
    assert not stale, (f"{os.path.relpath(doc, ROOT)}: {len(stale)} generated parts differ from docs/results "
                       f"(first: {stale[0][0]}); run python examples/publish_results.py")


def test_every_published_results_file_records_commit_command_machine_and_time():
    for path in glob.glob(os.path.join(RESULTS, "*", "results.json")):
        info = json.load(open(path))
        p = info.get("provenance", {})
        assert p.get("commit") and p.get("command") and p.get("machine", {}).get("cpu"), path
        assert info.get("wall_seconds"), path


def _study(tmp_path):
    rows = [dict(cell="init code", column=m, method=m, seed=s, test_error=e, best_val_error=e, run=f"{m}{s}")
            for m, es in (("backprop", (.91, .909, .911)), ("kd", (.2, .909, .1)), ("fitnet", (.05, .06, .07)))
            for s, e in enumerate(es)]
    info = {"experiment": "init", "results": rows, "seeds": [0, 1, 2], "split": "s", "wall_seconds": 600.0,
            "provenance": {"commit": "abcdef0123", "command": "python x", "machine": {"cpu": "c", "cores": 2}}}
    os.makedirs(tmp_path / "init")
    (tmp_path / "init" / "results.json").write_text(json.dumps(info))
    return str(tmp_path)


def test_tables_and_values_render_refresh_and_go_stale(tmp_path):
    root = _study(tmp_path)
    doc = ("FitNets left chance on <!--v int init/summary/init code/columns/fitnet/left_chance-->?<!--/v--> seeds.\n"
           "<!-- tinyfit:table init errors -->\nold\n<!-- tinyfit:end -->\n")
    assert len(report.stale(doc, root)) == 2
    new = report.refresh(doc, root)
    assert "left chance on <!--v int init/summary/init code/columns/fitnet/left_chance-->3<!--/v--> seeds" in new
    assert "| init code | FitNets (hints + KD) | 6.00% |" in new and "old" not in new
    assert report.stale(new, root) == []
    # the results change under the document: the test above would now fail, naming the part
    info = json.load(open(tmp_path / "init" / "results.json"))
    info["results"][-1]["test_error"] = 0.95
    (tmp_path / "init" / "results.json").write_text(json.dumps(info))
    assert [s[0] for s in report.stale(new, root)] == [
        "table init errors", "value int init/summary/init code/columns/fitnet/left_chance"]
    assert "commit `abcdef0`" in report.render_table(root, "init", "provenance")
    assert report.render_value(root, "min", "init/info/wall_seconds") == "10 minutes"


def test_bad_markers_are_clear_errors(tmp_path):
    root = _study(tmp_path)
    with pytest.raises(ValueError, match="unknown table kind 'nope'"):
        report.render_table(root, "init", "nope")
    with pytest.raises(ValueError, match="no value at"):
        report.render_value(root, "pct", "init/summary/init glorot/columns/kd/mean")
    # results not published yet are said so on the page, never an empty table or a stale number
    assert report.render_value(root, "pct", "depth/info/x") == report.NOT_YET
    assert report.render_table(root, "depth", "errors").startswith("*Not measured yet with the code as it stands")


def test_the_inference_tables_show_each_measurement_and_its_ratios(tmp_path):
    rows = [{"net": "student", "batch": 1, "threads": 1, "predictor_ms": 0.5, "autograd_ms": 1.0,
             "onnxruntime_ms": 0.25, "first_call_ms": 9.6, "kept_mb": 0.75, "layer_ms": [["h0", 0.1], ["y", 0.02]],
             "python_calls": 480},
            {"net": "teacher", "batch": 16, "threads": 2, "predictor_ms": 12.0, "autograd_ms": 13.0,
             "onnxruntime_ms": 10.0, "torch_ms": 8.0, "first_call_ms": 30.2, "kept_mb": 12.0}]
    (tmp_path / "predict").mkdir()
    (tmp_path / "predict" / "results.json").write_text(json.dumps({"rows": rows}))
    table = report.render_table(str(tmp_path), "predict", "predict").splitlines()
    assert table[2] == ("| student | 1 | 1 | 0.50 ms | 1.00 ms | 0.25 ms | not measured | 2.00 |  | 10 ms | 0.8 MB |")
    assert table[3].endswith("| 8.00 ms | 1.20 | 1.50 | 30 ms | 12.0 MB |")
    layers = report.render_table(str(tmp_path), "predict", "predict-layers").splitlines()
    assert layers[0] == "| layer | student, batch 1, 1 thread |"      # only the profiled rows
    assert layers[2:] == ["| h0 | 0.100 ms |", "| y | 0.020 ms |", "| Python function calls per call | 480 |"]


def test_the_training_sets_table_joins_each_sets_profile_and_its_runs(tmp_path):
    from tinyfit.data import class_profile
    y = np.repeat(np.arange(10), [5, 5, 5, 5, 5, 5, 5, 5, 5, 15])
    prof = class_profile(y, np.full((60, 2), 0.25))
    assert prof["class_counts"][9] == 15 and prof["largest_to_smallest"] == 3.0
    assert abs(prof["distance_from_uniform"] - (15 / 60 - 0.1)) < 1e-12 and prof["mean_pixel"] == 0.25
    hist = lambda vals: [{"epoch": i + 1, "val": v} for i, v in enumerate(vals)]
    rows = [{"data": "a", "method": "backprop", "test_error": e, "history": hist(h)}
            for e, h in ((0.9, [0.9, 0.9, 0.9]), (0.1, [0.9, 0.4, 0.1]), (0.2, [0.9, 0.9, 0.3]))] + \
           [{"data": "a", "method": "kd", "test_error": 0.05, "history": hist([0.2, 0.05])}]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "results.json").write_text(json.dumps({"results": rows, "training_sets": {"a": prof}}))
    table = report.render_table(str(tmp_path), "d", "training-sets").splitlines()
    assert table[0].endswith("| backprop left chance | KD left chance |")
    assert table[2] == ("| a | 60 | 5 5 5 5 5 5 5 5 5 15 | 3.00 | 0.150 | 0.2500 | 2 of 3 (from epoch 2-3 of 3) | "
                        "1 of 1 (from epoch 1 of 2) |")


def test_the_mutation_table_counts_each_module_and_its_unexplained_survivors(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    from mutation_score import tally
    survivors = [{"mutant": "a", "reason": "equivalent: same result"}, {"mutant": "d", "reason": "GPU only: ..."},
                 {"mutant": "e", "reason": "not worth a test: equivalent in practice"},
                 {"mutant": "b", "reason": ""}, {"mutant": "c", "reason": ""}]
    mods = {"tinyfit.stats": tally({"counts": {"killed": 18, "timeout": 1, "survived": 5, "no tests": 1},
                                    "mutants": 25, "killed": 19, "score": 19 / 25, "survivors": survivors})}
    # one equivalent survivor (only a reason that starts so): 19 of the 24 others killed
    assert (mods["tinyfit.stats"]["equivalent"], mods["tinyfit.stats"]["score_non_equivalent"]) == (1, 19 / 24)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "results.json").write_text(json.dumps({"modules": mods}))
    assert report.render_table(str(tmp_path), "m", "mutation").splitlines()[2] == \
        "| `tinyfit.stats` | 25 | 19 | 5 | 1 | 1 | 76.0% | 79.2% | 2 |"
    assert "Tests run" not in report.render_table(str(tmp_path), "m", "mutation")
    (tmp_path / "m" / "results.json").write_text(json.dumps({"modules": mods, "tests": ["test_stats.py"]}))
    assert report.render_table(str(tmp_path), "m", "mutation").splitlines()[-1] == \
        "Tests run: `test_stats.py` only (the whole suite kills at least as many)."


def test_a_figure_of_runs_on_training_sets_of_their_own_names_only_the_shared_held_out_digits(monkeypatch):
    seen = []
    monkeypatch.setitem(report.FIGURES, "bars", lambda rows, summary, path, title: seen.append(title))
    report.figure_of("data", [{"data": "random-3500-s0"}], {}, "x.png", "train 50000, validation 10000, test 10000", 3)
    report.figure_of("init", [{}], {}, "x.png", "train 3500, validation 500, test 1000", 3, smoke=True)
    assert seen == ["data: each panel's training set, validation 10000, test 10000, 3 seeds",
                    "init: train 3500, validation 500, test 1000, 3 seeds (SMOKE RUN: numbers mean nothing)"]
