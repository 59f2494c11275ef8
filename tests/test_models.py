"""The models: the paper's MNIST networks, the depth family, multiplications per example."""
import numpy as np
import pytest

from tinyfit.fitnets import make_regressor
from tinyfit.models import TEACHER_HINT, mnist_student, mnist_teacher, multiplications, thin_guided, thin_student
from tinyfit.experiments import DEPTHS, depth_students


def test_multiplications_counts_conv_and_linear_layers():
    # the MNIST student by hand: conv output positions x kernel x in x out maps, plus the softmax
    by_hand = (24 * 24 * 25 * 1 * 32 + 22 * 22 * 9 * 16 * 32 + 12 * 12 * 25 * 16 * 32 + 10 * 10 * 9 * 16 * 32
               + 8 * 8 * 9 * 16 * 48 + 6 * 6 * 9 * 12 * 48 + 108 * 10)
    assert multiplications(mnist_student()) == by_hand == 5_625_144


def test_depth_students_cost_the_same_within_15_percent():
    target = multiplications(mnist_student())
    rows = depth_students()
    assert [n for n, _, _ in rows] == list(DEPTHS)
    for n, width, mult in rows:
        model = thin_student(n, width, rng=np.random.default_rng(0))
        assert multiplications(model) == mult
        assert abs(mult - target) <= 0.15 * target, (n, width, mult)
        convs = [name for name in model.layer_names if name.startswith("h")]
        assert len(convs) == n and model.layer_names[-1] == "y"


@pytest.mark.parametrize("n", DEPTHS)
def test_guided_layer_in_the_middle_and_hint_at_the_teachers_middle(n):
    teacher = mnist_teacher(rng=np.random.default_rng(0))
    convs = [m for m in teacher.layer_names if m.startswith("h")]
    assert TEACHER_HINT == convs[len(convs) // 2]  # h1 of h0, h1, h2
    student = thin_student(n, 8, rng=np.random.default_rng(0))
    g = thin_guided(n)
    assert student.layer_names.index(g) == (n - 1) // 2  # the middle conv layer (0-based)
    reg = make_regressor(student, g, teacher, TEACHER_HINT, (28, 28, 1), pieces=2)
    assert reg.guided_shape == (6, 6, 8) and reg.hint_shape == (4, 4, 48) and reg.kernel == 3
