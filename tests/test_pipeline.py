"""The pipeline's wiring: the untrained-teacher control, the guided positions, settings
recorded with every finished stage and checked before reuse."""
import numpy as np
import pytest

from tinyfit.checkpoint import load_model

from tinyfit.data import Split
from tinyfit.fitnets import train_teacher
from tinyfit.pipeline import (STAGES, Budget, ConfigError, PipelineConfig, SettingsError, check_settings,
                              check_teacher_file, get_teacher, new_teacher, train_student)
from tinyfit.experiments import guided_positions


def digits(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Split(x[:40], y[:40], x[40:52], y[40:52], x[52:], y[52:])


CFG = PipelineConfig(seed=0, budget=Budget(teacher=1, student=1, hints=1), batch_size=8, init="code",
                     teacher_init="glorot", progress=False)


def test_the_untrained_teacher_is_exactly_where_training_started(tmp_path):
    data = digits()
    teacher = get_teacher(data, str(tmp_path), CFG, log=lambda *a: None, accept_weak=True)
    untrained = teacher.untrained().model.state_dict()
    # the teacher's own start: its stream's initial weights, then one epoch of training
    rng = np.random.default_rng([0, STAGES["teacher"]])
    start = new_teacher("code", "ceil", "glorot", rng)
    assert all(np.array_equal(untrained[k], v) for k, v in start.state_dict().items())
    train_teacher(start, data, CFG.stage_spec(1, teacher=True), rng, progress=False)
    trained = teacher.model.state_dict()
    assert all(np.array_equal(trained[k], v) for k, v in start.state_dict().items())
    assert not np.array_equal(trained["h0.conv.W"], untrained["h0.conv.W"])
    assert teacher.untrained().fingerprint != teacher.fingerprint


def test_every_guided_position_gets_the_kernel_rule_regressor_or_a_clear_error():
    # the student's maps: h0 24x24, h1 10x10 (pooled), h2 12x12, h3 4x4, h4 8x8, h5 3x3; the
    # teacher's hint h1 is 4x4, so k = N - 4 + 1, and h5 (3x3 < 4x4) has no regressor
    got = {g: (k, why) for g, k, why in guided_positions()}
    assert {g: k for g, (k, _) in got.items()} == {"h0": 21, "h1": 7, "h2": 9, "h3": 1, "h4": 5, "h5": None}
    assert "no convolutional regressor fits" in got["h5"][1] and "(3, 3, 12)" in got["h5"][1]


@pytest.mark.parametrize("method", ["dsn-kd", "random-hints-kd", "hints-backprop", "single-stage"])
def test_variants_train_and_are_refused_under_other_settings(method, tmp_path):
    data = digits()
    teacher = get_teacher(data, str(tmp_path / "t"), CFG, log=lambda *a: None, accept_weak=True)
    cfg = PipelineConfig(**{**CFG.__dict__, "hint_weight": 0.5})
    model, row = train_student(method, data, teacher, str(tmp_path / method), cfg, log=lambda *a: None)
    assert row["method"] == method and "FitNets" not in row["label"]
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith(("regressor", "classifier", "flat")) for n in names) and names[-1] == "y.b"
    if method != "single-stage":
        assert row["hint_history"] and row["settings"]["hint_epochs"] == 1
    other = PipelineConfig(**{**cfg.__dict__, "tau": 5.0, "hint_weight": 0.7})
    if method == "hints-backprop":  # no KD anywhere: tau does not matter, the seed does
        other = PipelineConfig(**{**cfg.__dict__, "seed": 1})
    with pytest.raises(SettingsError, match="was made with other settings"):
        train_student(method, data, teacher, str(tmp_path / method), other, resume=True, log=lambda *a: None)


def test_hints_backprop_reuses_fitnets_stage1_only_when_it_is_the_same(tmp_path):
    data, quiet = digits(), lambda *a: None
    teacher = get_teacher(data, str(tmp_path / "t"), CFG, log=quiet, accept_weak=True)
    train_student("fitnet", data, teacher, str(tmp_path / "fitnet"), CFG, log=quiet)
    fresh, _ = train_student("hints-backprop", data, teacher, str(tmp_path / "fresh"), CFG, log=quiet)
    said = []
    reused, row = train_student("hints-backprop", data, teacher, str(tmp_path / "reused"), CFG, log=said.append,
                                stage1_from=str(tmp_path / "fitnet"))
    src = str(tmp_path / "fitnet" / "stage1.model.npz")
    assert f"stage1: the same as {src} (same stage-1 settings), reused" in said
    from tinyfit.checkpoint import load_archive
    extra = load_archive(str(tmp_path / "reused" / "stage1.model.npz"), "model")[1]["extra"]
    assert extra["stage1_from"] == src and extra["settings"]["method"] == "hints-backprop"
    stage1 = lambda d: load_model(str(tmp_path / d / "stage1.model.npz")).state_dict()
    for a, b in ((stage1("fitnet"), stage1("reused")), (fresh.state_dict(), reused.state_dict())):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert row["settings"]["method"] == "hints-backprop"
    # a fresh run (no resume) in a folder with an older stage 1 still takes FitNets' stage 1
    said.clear()
    train_student("hints-backprop", data, teacher, str(tmp_path / "fresh"), CFG, log=said.append,
                  stage1_from=str(tmp_path / "fitnet"))
    assert any("reused" in m for m in said)
    # another seed's FitNets run is not the same stage 1: trained, not copied
    other = PipelineConfig(**{**CFG.__dict__, "seed": 1})
    said.clear()
    train_student("hints-backprop", data, teacher, str(tmp_path / "seed1"), other, log=said.append,
                  stage1_from=str(tmp_path / "fitnet"))
    assert not any("reused" in m for m in said)
    assert not np.array_equal(stage1("seed1")["h0.conv.W"], stage1("fitnet")["h0.conv.W"])


def test_settings_check_names_what_differs():
    check_settings("f", {"tau": 3.0, "seed": 0}, {"tau": 3.0, "seed": 0})
    with pytest.raises(SettingsError) as e:
        check_settings("f", {"tau": 3.0, "seed": 0}, {"tau": 5.0, "seed": 0})
    assert str(e.value) == ("f was made with other settings: tau=3.0 (now 5.0); use the same settings to resume, or "
                            "another output folder (--out) for a new run")
    # a setting on one side only differs too; the first three differences (sorted) are named
    with pytest.raises(SettingsError, match=r"settings: a=1 \(now None\), b=None \(now 2\), c=1 \(now 3\); use"):
        check_settings("f", {"a": 1, "c": 1, "d": 1}, {"b": 2, "c": 3, "d": 4})
    with pytest.raises(SettingsError) as e:
        check_settings("f", None, {"tau": 3.0})
    assert str(e.value) == ("f records no settings (written by an older tinyfit), so it cannot be reused safely; give "
                            "another output folder (--out) or delete it to train it again")


def test_the_untrained_teacher_is_rebuilt_from_the_seed_and_settings_recorded():
    from tinyfit.pipeline import Teacher
    data = digits()
    settings = {"seed": 3, "pieces": "code", "pooling": "ceil", "init": "glorot", "epochs": 12}
    trained = Teacher(new_teacher("code", "ceil", "glorot", np.random.default_rng(9)), data, {}, settings)
    control = trained.untrained()
    start = new_teacher("code", "ceil", "glorot", np.random.default_rng([3, STAGES["teacher"]]))
    assert all(np.array_equal(control.model.state_dict()[k], v) for k, v in start.state_dict().items())
    assert control.row == {"method": "untrained teacher"} and control.settings == dict(settings, epochs=0)
    code = Teacher(start, data, {}, dict(settings, init="code")).untrained().model
    assert float(np.abs(code.state_dict()["h0.conv.W"]).max()) <= 0.005   # the recorded init, U(-0.005, 0.005)
    with pytest.raises(ValueError) as e:
        Teacher(start, data, {}, None).untrained()
    assert str(e.value) == ("the untrained teacher is rebuilt from the settings the teacher was trained with, and this "
                            "teacher's file records none; train the teacher with tinyfit (no --teacher PATH)")


def test_stage1_settings_are_the_runs_less_stage2s_with_what_stage1_fits():
    from tinyfit.pipeline import stage1_settings
    run = {"method": "fitnet", "tau": 3.0, "lambda_schedule": "x", "seed": 2, "init": "code"}
    assert stage1_settings(run) == {"seed": 2, "init": "code", "stage1": "hints"}
    # hints + backprop's stage 1 is FitNets' (the same kind); DSN's (labels) and the random
    # teacher's are not
    assert stage1_settings(dict(run, method="hints-backprop", tau=None)) == stage1_settings(run)
    kinds = {stage1_settings(dict(run, method=m))["stage1"] for m in ("fitnet", "dsn-kd", "random-hints-kd")}
    assert kinds == {"hints", "labels", "untrained-teacher hints"}


def test_a_budget_refuses_a_missing_stage_other_than_stage2():
    assert Budget(teacher=1, student=2, hints=1, stage2=None).stage2 is None
    for k in ("teacher", "student", "hints", "patience"):
        with pytest.raises(ConfigError, match=rf"^budget {k} must be a positive integer number of epochs, got None$"):
            Budget(**dict(dict(teacher=1, student=2, hints=1), **{k: None}))


def test_seeds_and_architectures_get_distinct_random_streams():
    draws = {}
    for seed in (0, 1):
        for stage in ("backprop", "kd", "stage1", "fitnet"):
            for key in ((), (3,), (5,)):
                draws[(seed, stage, key)] = PipelineConfig(seed=seed).rng(stage, key).random()
    assert len(set(draws.values())) == len(draws)
    # the same seed and stage give the same stream: runs are reproducible
    assert PipelineConfig(seed=1).rng("kd", (3,)).random() == draws[(1, "kd", (3,))]


def test_pipeline_config_checks_its_arguments():
    with pytest.raises(ValueError, match="init must be 'code'"):
        PipelineConfig(init="he")
    with pytest.raises(ValueError, match="seed must be an integer"):
        PipelineConfig(seed=-3)
    with pytest.raises(ValueError, match="budget student must be a positive integer"):
        Budget(teacher=1, student=0, hints=1)


def test_a_teacher_at_chance_stops_the_run_unless_accepted(tmp_path):
    data = digits()   # random labels: the teacher cannot leave chance on them
    said = []
    with pytest.raises(ValueError, match=r"the teacher is at chance \(validation error .*--accept-weak-teacher"):
        get_teacher(data, str(tmp_path / "a"), CFG, log=said.append)
    t = get_teacher(data, str(tmp_path / "b"), CFG, log=said.append, accept_weak=True)
    assert t.row["best_val_error"] >= 0.5 and any(s.startswith("warning: the teacher is at chance") for s in said)


def test_a_teacher_file_is_checked_for_its_role_before_anything_trains(tmp_path):
    from tinyfit.checkpoint import save_model
    from tinyfit.models import mnist_student, mnist_teacher
    teacher, student = str(tmp_path / "teacher.model.npz"), str(tmp_path / "kd.model.npz")
    save_model(teacher, mnist_teacher())
    save_model(student, mnist_student(), {"settings": {"method": "kd"}})
    check_teacher_file(teacher)
    from tinyfit.checkpoint import save_archive
    plain = str(tmp_path / "plain.model.npz")   # no extra metadata at all
    model = mnist_student()
    save_archive(plain, model.state_dict(), {"spec": model.spec()}, "model")
    for path, said in ((str(tmp_path), f"{tmp_path} is a folder; give the teacher's model file (teacher.model.npz in "
                                       "the --out folder of a run that trained one)"),
                       (str(tmp_path / "none.npz"), f"{tmp_path}/none.npz does not exist; give the teacher's model "
                                                    "file (teacher.model.npz)"),
                       (student, f"{student} holds a kd student's model (36,226 weights, layers h0, h1, h2, h3, h4, "
                                 "h5, y), not the MNIST teacher"),
                       (plain, f"{plain} holds another model (36,226 weights")):
        with pytest.raises(ConfigError) as e:
            check_teacher_file(path)
        assert e.value.field == "teacher" and e.value.reason.startswith(said)
    with pytest.raises(ConfigError, match="pooling 'floor'"):   # the teacher of another pooling mode
        check_teacher_file(teacher, pooling="floor")


# the official code's and the paper's settings as ../shared/fitnets_reference.md states them (sections 1
# and 2), written here, not read from the code
REFERENCE = {"rmsprop": {"lr": 0.0005, "rms_decay": 0.9, "rms_eps": 1e-5}, "tau": 3.0, "lambda_start": 4.0,
             "lambda_final": 0.0, "lambda_start_epoch": 5, "lambda_saturate_of_500": 150, "batch_size": 128,
             "teacher": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.5, "final_momentum": 0.7},
             "student_init": 0.005, "regressor_init": 0.05, "regressor_max_norm": 0.9, "drop_last": True,
             "patience_full": 100, "epochs_full": 500}


def test_every_default_the_official_code_fixes_is_the_references():
    import dataclasses
    from tinyfit.fitnets import conv_regressor
    from tinyfit.pipeline import BUDGETS
    from tinyfit.training import FitConfig
    cfg = PipelineConfig()
    st = cfg.stage_spec(30)
    assert (st.optimizer, st.lr, st.rms_decay, st.rms_eps) == ("rmsprop",) + tuple(REFERENCE["rmsprop"].values())
    t = cfg.stage_spec(15, teacher=True)
    ref = REFERENCE["teacher"]
    assert (t.optimizer, t.lr, t.momentum, t.final_momentum) == tuple(ref.values())
    assert cfg.tau == REFERENCE["tau"] and cfg.batch_size == REFERENCE["batch_size"]
    assert cfg.lambda_final == REFERENCE["lambda_final"] and cfg.weight_init() == REFERENCE["student_init"]
    full = dataclasses.replace(cfg, budget=BUDGETS["full"])
    sched = full.schedule()
    assert (sched.start, sched.start_epoch, sched.saturate) == (REFERENCE["lambda_start"],
                                                                 REFERENCE["lambda_start_epoch"],
                                                                 REFERENCE["lambda_saturate_of_500"])
    assert (BUDGETS["full"].student, BUDGETS["full"].patience) == (REFERENCE["epochs_full"],
                                                                   REFERENCE["patience_full"])
    assert FitConfig().drop_last is REFERENCE["drop_last"]
    from tinyfit.pipeline import _regressor   # the regressor the pipeline builds
    import inspect
    assert "max_norm=0.9" in inspect.getsource(_regressor)
    reg = conv_regressor((4, 4, 16), (4, 4, 48), pieces=2, max_norm=0.9, rng=np.random.default_rng(0))
    assert abs(reg.state_dict()["conv.W"]).max() <= REFERENCE["regressor_init"]


def test_each_budget_cap_reaches_only_its_stage():
    import dataclasses
    cfg = dataclasses.replace(CFG, budget=Budget(teacher=7, student=9, hints=5), max_epochs=2)
    assert cfg.stage_spec(7, teacher=True).fit.epochs == 7       # the teacher is never capped
    assert cfg.stage_spec(5, stage1=True).fit.epochs == 5        # nor stage 1
    assert cfg.stage_spec(9).fit.epochs == 2                     # the students' last stage is
    from tinyfit.methods import METHODS
    eq = dataclasses.replace(cfg, budget=Budget(teacher=7, student=30, hints=10, stage2=20))
    assert eq.last_stage_epochs(METHODS["fitnet"]) == 20 and eq.last_stage_epochs(METHODS["kd"]) == 30
    # lambda's schedule is scaled to the stage it runs in: 30% of 20 epochs, at least its start
    assert eq.schedule(20).saturate == 6 and eq.schedule(30).saturate == 9
    assert eq.schedule(25).saturate == 8   # round(7.5): the rounding rule is part of the schedule
    from tinyfit.study import _RUN_BUDGETS
    b = Budget(teacher=15, student=30, hints=15)
    assert (_RUN_BUDGETS["equal"](b).hints, _RUN_BUDGETS["equal"](b).stage2) == (10, 20)
    assert _RUN_BUDGETS["long"](b).student == 45 and _RUN_BUDGETS[""](b) == b


@pytest.mark.parametrize("method", ["backprop", "kd", "fitnet", "single-stage", "dsn-kd", "random-hints-kd",
                                    "hints-backprop"])
def test_each_method_trains_what_it_says(method, tmp_path):
    """Which weights moved after training, against the student each stage starts from (built
    here from the method's own random streams): stage 1 moves the layers up to the guided one
    and leaves the rest at their initial weights; the last stage moves every layer."""
    import dataclasses
    from tinyfit.methods import METHODS
    from tinyfit.models import mnist_student
    data = digits()
    cfg = dataclasses.replace(CFG, hint_weight=0.26)
    teacher = get_teacher(data, str(tmp_path / "t"), cfg, log=lambda *a: None, accept_weak=True)
    model, row = train_student(method, data, teacher, str(tmp_path / method), cfg, log=lambda *a: None)
    m = METHODS[method]
    start = lambda stream: mnist_student(init=0.005, rng=cfg.rng(stream)).state_dict()
    moved = lambda a, b: {k.split(".")[0] for k in a if not np.array_equal(a[k], b[k])}
    layers = {"h0", "h1", "h2", "h3", "h4", "h5", "y"}
    final = model.state_dict()
    if m.stage1:
        s1 = load_model(str(tmp_path / method / "stage1.model.npz")).state_dict()
        assert moved(s1, start("stage1")) == {"h0", "h1", "h2", "h3"}, "stage 1 trains up to the guided layer"
        assert moved(final, s1) == layers and moved(final, start(m.stream)) == layers
        assert row["compute"]["epochs"] == 2 and row["settings"]["hint_epochs"] == 1
    else:
        assert moved(final, start(m.stream)) == layers and row["compute"]["epochs"] == 1
    assert ("teacher" in row["settings"]) == m.teacher and ("tau" in row["settings"]) == m.kd
    assert row["compute"]["steps"] == row["compute"]["epochs"] * (len(data.y_train) // cfg.batch_size)


def test_the_exported_fitnets_student_holds_no_regressor(tmp_path):
    """Stage 2's model file (what a user loads and exports) has exactly the student's weights: the
    regressor of stage 1 is not in it, nor in its ONNX export."""
    import dataclasses
    from tinyfit.checkpoint import load_archive
    from tinyfit.models import mnist_student
    data = digits()
    teacher = get_teacher(data, str(tmp_path / "t"), CFG, log=lambda *a: None, accept_weak=True)
    train_student("fitnet", data, teacher, str(tmp_path / "f"), dataclasses.replace(CFG), log=lambda *a: None)
    arrays, _ = load_archive(str(tmp_path / "f" / "fitnet.model.npz"), "model")
    want = {k: v.shape for k, v in mnist_student().state_dict().items()}
    assert {k: v.shape for k, v in arrays.items()} == want
    stage1, _ = load_archive(str(tmp_path / "f" / "stage1.model.npz"), "model")
    assert not any("regressor" in k for k in stage1)
    pytest.importorskip("onnx")
    import onnx
    import tinyfit
    path = tinyfit.export_onnx(load_model(str(tmp_path / "f" / "fitnet.model.npz")), str(tmp_path / "s.onnx"))
    inits = onnx.load(path).graph.initializer
    n_weights = sum(int(np.prod(v)) for v in want.values())
    # the student's weights and a few shape constants; the regressor alone would add 1,632
    assert n_weights <= sum(int(np.prod(i.dims)) for i in inits) <= n_weights + 100
    assert not any("regressor" in i.name for i in inits)


def test_the_kd_settings_follow_the_config_and_the_stage_length():
    from tinyfit.fitnets import LinearDecay
    cfg = PipelineConfig(tau=2.0, budget=Budget(teacher=1, student=40, hints=1))
    kd = cfg.kd()
    assert kd.tau == 2.0 and vars(kd.schedule) == vars(LinearDecay(4.0, 0.0, 5, 12))   # 0.3 x 40 epochs
    assert vars(cfg.kd(6).schedule) == vars(LinearDecay(4.0, 0.0, 5, 5))    # never saturating before it starts
    assert vars(cfg.kd(3).schedule) == vars(LinearDecay(4.0, 0.0, 3, 3))    # shorter than the official start


def test_the_regressor_has_the_hint_layers_pieces_and_the_official_max_norm():
    from tinyfit.models import mnist_teacher
    from tinyfit.pipeline import Teacher, _regressor, mnist_student_spec
    data = digits()
    for pieces in ("code", "paper"):
        teacher = Teacher(mnist_teacher(pieces), data, {}, None)
        student = mnist_student_spec(pieces)
        s1 = student.build(0.005, np.random.default_rng(0))
        said = []
        reg = _regressor(s1, student, teacher, data, np.random.default_rng(1), "cpu", said.append)
        assert reg.pieces == teacher.model["h1"].pieces and reg.conv.W.max_norm == 0.9
        assert said == [f"regressor: guided {student.guided} {reg.guided_shape} -> hint h1 {reg.hint_shape}, "
                        f"kernel {reg.kernel}x{reg.kernel}, maxout pieces {reg.pieces}"]


@pytest.mark.parametrize("method,source", [("fitnet", "teacher"), ("hints-backprop", "teacher"),
                                           ("random-hints-kd", "untrained teacher"), ("dsn-kd", None)])
def test_stage1_takes_its_hints_from_the_teacher_its_method_names_and_is_never_capped(method, source, tmp_path,
                                                                                     monkeypatch):
    import dataclasses
    from tinyfit.pipeline import Teacher
    data = digits()
    cfg = dataclasses.replace(CFG, budget=Budget(teacher=1, student=1, hints=2), max_epochs=1)
    teacher = get_teacher(data, str(tmp_path / "t"), cfg, log=lambda *a: None, accept_weak=True)
    asked, hints = [], Teacher.hints
    monkeypatch.setattr(Teacher, "hints", lambda self, layer="h1": asked.append(self.row.get("method"))
                        or hints(self, layer))
    _, row = train_student(method, data, teacher, str(tmp_path / method), cfg, log=lambda *a: None)
    assert asked == ([source] if source else [])
    assert row["compute"]["epochs"] == 2 + 1   # stage 1's 2 epochs (max_epochs caps the last stage only)
