"""Column keys: every published spelling is built and parsed back by one rule."""
from hypothesis import given, strategies as st

from tinyfit.columns import Column, column_key, column_label, parse_column
from tinyfit.methods import ALL_METHODS


def test_the_published_spellings():
    assert column_key("backprop", floor=1e-8) == "backprop floor=1e-08"
    assert column_key("single-stage", beta=0.26) == "single-stage beta=0.26"
    assert column_key("kd", beta=0.26) == "kd"            # only a hint-weight method has a weight in its key
    assert column_key("fitnet", guided="h2") == "guided h2"
    assert parse_column("depth 9") == Column(depth=9)
    assert parse_column("fitnet floor=1e-08") == Column("fitnet", floor=1e-8)
    assert parse_column("single-stage beta=2.6").grid_member and not parse_column("single-stage").grid_member
    assert column_label("single-stage beta=0.26") == "single-stage, beta 0.26 (RepDistiller's weight)"
    assert column_label("kd floor=1e-08") == "KD, RMSProp floor 1e-08"
    assert column_label("guided h3") == "hints at h3 + KD (the paper's: FitNets)"
    assert column_label("fitnet") == "FitNets (hints + KD)"
    assert column_key("kd", budget="long") == "kd budget=long" and parse_column("fitnet budget=equal").budget == "equal"
    assert column_label("fitnet budget=equal") == "FitNets (hints + KD), stage 1 + stage 2 in the one-stage epochs"
    assert column_key("backprop", classes="rebalanced") == "backprop classes=rebalanced"
    assert parse_column("backprop classes=skewed") == Column("backprop", classes="skewed")
    assert column_label("backprop classes=rebalanced") == "backprop, classes rebalanced"


@given(st.sampled_from(ALL_METHODS), st.sampled_from([0.0, 1e-8, 3e-7, 0.5]),
       st.sampled_from([0.0, 0.026, 0.26, 2.6, 13.0]))
def test_a_key_parses_back_to_what_built_it(method, floor, beta):
    key = column_key(method, floor=floor, beta=beta)
    c = parse_column(key)
    assert c.key == key and c.method == method and c.floor == floor
    assert c.beta == (beta if method == "single-stage" and not floor else 0.0)


def test_labels_and_keys_of_every_kind_by_hand():
    assert column_key("single-stage") == "single-stage"        # no weight given: none in the key
    assert column_label("guided h2") == "hints at h2 + KD"     # not the paper's guided layer
    assert parse_column("guided h2") == Column("fitnet", guided="h2")
    assert column_label("single-stage beta=2.6") == "single-stage, beta 2.6"
    assert column_label("kd budget=other") == "KD, other"      # a budget without a label shows its name
    assert column_label("depth 9") == "depth 9" and column_label("teacher") == "teacher"
