"""The method records against an independent statement of what each method is (docs/study.md,
docs/fitnets.md): whether it needs the teacher, what stage 1 fits, what the last stage's loss
is, and which random streams it shares."""
from tinyfit.methods import ALL_METHODS, METHODS, PAPER_METHODS, VARIANTS, method, row_label

# method: (needs the teacher, stage 1 fits, last stage's loss, stream of its student and batches)
STATED = {
    "backprop": (False, None, "ce", "backprop"),
    "kd": (True, None, "kd", "kd"),
    "fitnet": (True, "hints", "kd", "fitnet"),
    "single-stage": (True, None, "ce + beta hint", "backprop"),   # backprop's student, batches
    "dsn-kd": (True, "labels", "kd", "fitnet"),                    # FitNets' streams in both stages
    "random-hints-kd": (True, "untrained-teacher hints", "kd", "fitnet"),
    "hints-backprop": (True, "hints", "ce", "fitnet"),
}


def test_each_record_says_what_the_method_needs_and_trains():
    assert PAPER_METHODS == ("backprop", "kd", "fitnet") and set(VARIANTS) == set(STATED) - set(PAPER_METHODS)
    assert set(ALL_METHODS) == set(STATED)
    for key, (teacher, stage1, loss, stream) in STATED.items():
        m = method(key)
        got_loss = "kd" if m.kd else "ce + beta hint" if m.hint_weight else "ce"
        assert (m.teacher, m.stage1, got_loss, m.stream) == (teacher, stage1, loss, stream), key


def test_only_hints_then_backprop_takes_another_methods_stage_1():
    assert {k: m.shares_stage1 for k, m in METHODS.items() if m.shares_stage1} == {"hints-backprop": "fitnet"}
    assert METHODS["fitnet"].stage1 == METHODS["hints-backprop"].stage1


def test_labels_and_colours_are_distinct_and_ablations_are_never_called_fitnets():
    assert len({m.color for m in METHODS.values()}) == len(METHODS)
    assert len({m.label for m in METHODS.values()}) == len(METHODS)
    assert all("FitNets" not in METHODS[v].label for v in VARIANTS)
    assert row_label("kd") == "student, KD" and row_label("teacher") == "teacher"


def test_an_unknown_method_names_the_known_ones():
    import pytest
    with pytest.raises(ValueError) as e:
        method("fitnets")
    assert str(e.value) == ("method must be one of backprop, kd, fitnet, single-stage, dsn-kd, random-hints-kd, "
                            "hints-backprop, got 'fitnets'")
