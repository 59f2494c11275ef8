"""The study's experiments: one declaration each, in one table (``EXPERIMENTS``).

An experiment is a question, a budget, default seeds, the runs it plans for given seeds and
options, the pairs of columns it compares, its figure kind and, where it records more than
errors, its recorder. The study (``tinyfit.study``) runs what ``plan`` returns, the summary
(``tinyfit.summary``) compares what ``pairs`` names, the report draws ``figure``; none of them
asks for an experiment by name. A new experiment is one entry here (its constants beside it),
a row of the plan test and a section in docs/study.md.

Each run (experiment cell x method x seed) trains into ``<out>/<run.experiment>/<run.name>``;
a run that several experiments plan (the init cells' students) lives in the folder of the one
that defines it and is shared.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .columns import column_key
from .fitnets import make_regressor
from .methods import LIBRARY_HINT_WEIGHT, PAPER_METHODS
from .models import (STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher, multiplications, thin_guided,
                     thin_student, thin_width)
from .pipeline import Budget, ConfigError, StudentSpec, mnist_student_spec

__all__ = ["Run", "Recorder", "Experiment", "EXPERIMENTS", "experiment", "plan", "DEPTHS", "depth_students",
           "guided_positions", "BETA_GRID", "LIBRARY_BETA", "LOW_FLOOR"]

DEPTHS = (3, 5, 7, 9)


@dataclass(frozen=True)
class Run:
    """One student run of a study: its method, seed and student.

    experiment: the experiment whose folder holds the run; runs that several experiments
    use (the init cells' backprop, KD and FitNets students) live in one place and are shared.
    guided: the guided layer when it is not the student's own (the position experiment).
    beta: the hint weight of a single-stage run. floor: its RMSProp floor when not the
    official 1e-5. budget: its epochs when not the experiment's (the equal-compute arms): 'equal',
    two stages shortened to the one-stage budget (stage 1 a third); 'long', one stage lengthened
    to the two stages' total."""
    experiment: str
    method: str
    seed: int
    init: str = "code"
    depth: int = 0          # 0: the paper's MNIST student; else thin_student(depth, width)
    width: int = 0
    guided: str = ""
    beta: float = 0.0
    floor: float = 0.0
    budget: str = ""
    data: str = ""          # its training digits when not the study's (``data.training_subset``)
    teacher: int = 0        # its teacher's seed (0: the study's shared teacher)

    @property
    def cell(self):
        """The experiment cell (what the methods are compared within)."""
        if self.data:
            return f"data {self.data}"
        return f"depth {self.depth}" if self.depth else f"init {self.init}"

    @property
    def column(self):
        """What this run stands for within its cell (``tinyfit.columns``)."""
        return column_key(self.method, self.floor, self.beta, self.guided, self.budget)

    @property
    def name(self):
        head = f"depth{self.depth}" if self.depth else f"init-{self.init}"
        head = f"data-{self.data}" if self.data else head
        head += f"-teacher{self.teacher}" if self.teacher else ""
        tail = (f"-{self.guided}" if self.guided else "") + (f"-floor{self.floor:g}" if self.floor else "")
        if self.beta:
            tail += f"-beta{self.beta:g}"
        if self.budget:
            tail += f"-{self.budget}"
        return f"{head}/seed{self.seed}/{self.method}{tail}"

    def student(self, pieces="code", pooling="ceil"):
        if not self.depth:
            return mnist_student_spec(pieces, pooling, self.guided or None)
        n, w = self.depth, self.width
        return StudentSpec(lambda init, rng: thin_student(n, w, init=init, rng=rng), thin_guided(n), key=(n,),
                           name=f"thin student, {n} conv layers of {w} channels")


@dataclass(frozen=True)
class Recorder:
    """What a recording experiment traces (a ``hooks.GradientRecorder``): the first ``epochs``
    epochs of each stage, every step's gradient norms and, every ``every`` steps, the layers'
    output scales on the first ``probe`` validation images. Part of a run's settings."""
    epochs: int
    every: int
    probe: int

    def settings(self):
        return {"every": self.every, "probe_images": self.probe}


def _all_pairs(columns):
    return [(a, b) for i, a in enumerate(PAPER_METHODS) for b in PAPER_METHODS[i + 1:]]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the study.

    question: what it asks, in one sentence; summary: one line for the command's help.
    plan(seeds, init, depths, methods) -> [Run], in training order. pairs(columns) -> [(a, b)]:
    the column pairs it compares (those present are kept). figure: 'bars', 'depth', 'curves' or
    'gradients'. recorder: what its runs trace (None: nothing). uses_depths: ``depths`` matters.
    place(run) -> (cell, column) when not the run's own. across_depths: add a cell comparing
    FitNets' errors at each depth with the shallowest. across_cells: add a cell that pools
    every cell's runs (seeds keyed by cell), compared by the same pairs; pools: ((name, cells),
    ...), further pooled cells of named members. describe(depths) -> lines printed before
    it runs; extra_info(pieces, pooling) -> what its results file records besides the rows.
    full_data: it runs on the full MNIST files (``--data-dir``), with its own budget;
    teacher_init: the shared teacher's init when not the command line's default.
    budget_of(budget, steps_per_epoch) -> a run's Budget, when its runs' budgets differ by the
    size of their training sets."""
    name: str
    question: str
    summary: str
    budget: Budget
    seeds: tuple
    plan: Callable
    pairs: Callable = _all_pairs
    figure: str = "bars"
    recorder: Recorder | None = None
    uses_depths: bool = False
    place: Callable | None = None
    across_depths: bool = False
    across_cells: bool = False
    pools: tuple = ()
    describe: Callable | None = None
    extra_info: Callable | None = None
    full_data: bool = False
    teacher_init: str | None = None
    budget_of: Callable | None = None
    args: str = ""          # what its documented command adds (the full files' experiments)
    out: str = "runs/study"


# epoch budgets on the embedded digits, sized for 2 cores (docs/study.md: measured wall times);
# experiments with one budget share their runs
_MNIST_BUDGET = Budget(teacher=15, student=30, hints=15)
_DEPTH_BUDGET = Budget(teacher=15, student=25, hints=12)


def depth_students(depths=DEPTHS):
    """[(depth, width, multiplications)] at about the MNIST student's multiplications."""
    target = multiplications(mnist_student())
    return [(n,) + thin_width(n, target) for n in depths]


def _describe_depths(depths):
    return [f"depth {n}: {n} maxout conv layers of {w} channels x 2 pieces, {mult:,} multiplications per example"
            for n, w, mult in depth_students(depths)]


# -- init ----------------------------------------------------------------------------------
INIT = Experiment(
    "init", "Are hints an optimisation aid from the official init, and what do they add once optimisation is easy "
            "(Glorot init)?", "official U(-0.005, 0.005) vs Glorot init, 3 methods",
    _MNIST_BUDGET, (0, 1, 2, 3, 4, 5),
    lambda seeds, init, depths, methods: [Run("init", m, s, i) for i in ("code", "glorot") for s in seeds
                                          for m in methods])


# -- depth: the paper's Fig. 2 protocol in miniature ------------------------------------------
def _depth_pairs(columns):
    if columns and all(c.startswith("depth ") for c in columns):  # the across-depths cell: shallowest first
        return [(c, columns[0]) for c in columns[1:]]
    return _all_pairs(columns)


DEPTH = Experiment(
    "depth", "Which depths of thin student, at about the MNIST student's multiplications, does each method train, "
             "and is deeper better (the paper's Fig. 2)?",
    "3/5/7/9 conv layers at equal multiplications (paper Fig. 2)",
    _DEPTH_BUDGET, (0, 1, 2),
    lambda seeds, init, depths, methods: [Run("depth", m, s, init, n, w) for n, w, _ in depth_students(depths)
                                          for s in seeds for m in methods],
    pairs=_depth_pairs, figure="depth", uses_depths=True, across_depths=True, describe=_describe_depths)

# -- curves --------------------------------------------------------------------------------
CURVES = Experiment(
    "curves", "How do the three methods' training loss and validation error evolve epoch by epoch?",
    "per-epoch loss and validation error of the 3 methods", _MNIST_BUDGET, (0, 1, 2),
    lambda seeds, init, depths, methods: [Run("init", m, s, init) for s in seeds for m in methods],
    figure="curves")

# -- ablate: the paper's unshown claims --------------------------------------------------------
# the single-stage hint weights tried (chosen on validation): RepDistiller's, a tenth of it and ten times it
LIBRARY_BETA = LIBRARY_HINT_WEIGHT
BETA_GRID = (0.026, LIBRARY_BETA, 2.6)
_ABLATIONS = ("dsn-kd", "random-hints-kd", "hints-backprop")


def _ablate_plan(seeds, init, depths, methods):
    return [r for i in ("code", "glorot") for s in seeds for r in
            [Run("init", m, s, i) for m in methods]
            + [Run("ablate", "single-stage", s, i, beta=b) for b in BETA_GRID]
            + [Run("ablate", v, s, i) for v in _ABLATIONS]]


def _ablate_pairs(columns):
    lib = column_key("single-stage", beta=LIBRARY_BETA)
    return [("single-stage", "fitnet"), ("single-stage", "kd"), (lib, "fitnet"), (lib, "kd"), ("dsn-kd", "fitnet"),
            ("dsn-kd", "kd"), ("random-hints-kd", "fitnet"), ("random-hints-kd", "kd"), ("hints-backprop", "fitnet"),
            ("hints-backprop", "backprop")]


ABLATE = Experiment(
    "ablate", "Do the two stages, the teacher's hint and KD in stage 2 each matter: a single stage, label "
              "supervision at the guided layer, hints from an untrained teacher, hints then backprop?",
    "single stage, DSN-style stage 1, random-teacher hints, hints + backprop", _MNIST_BUDGET, (0, 1, 2, 3, 4),
    _ablate_plan, pairs=_ablate_pairs)

# -- position: the guided layer moved through the student ------------------------------------------
GUIDED_POSITIONS = ("h0", "h1", "h2", "h3", "h4", "h5")


def guided_positions(pieces="code", pooling="ceil"):
    """[(layer, regressor kernel or None, reason)] for the MNIST student's conv layers as the
    guided layer, the hint fixed at the teacher's middle layer: a kernel by the paper's rule,
    or None with the reason no conv regressor fits."""
    out = []
    student, teacher = mnist_student(pieces, pooling), mnist_teacher(pieces, pooling)
    for g in GUIDED_POSITIONS:
        try:
            reg = make_regressor(student, g, teacher, TEACHER_HINT, student.input_shape)
            out.append((g, reg.kernel, ""))
        except ValueError as e:
            out.append((g, None, str(e)))
    return out


POSITION = Experiment(
    "position", "Does it matter which student layer is guided by the teacher's middle layer?",
    "the guided layer moved through the student's conv layers", _MNIST_BUDGET, (0, 1, 2),
    lambda seeds, init, depths, methods: [
        Run("init", "fitnet", s, init) if g == STUDENT_GUIDED else Run("position", "fitnet", s, init, guided=g)
        for s in seeds for g, k, _ in guided_positions() if k],
    pairs=lambda columns: [(c, f"guided {STUDENT_GUIDED}") for c in columns if c != f"guided {STUDENT_GUIDED}"],
    place=lambda run: (f"init {run.init}", f"guided {run.guided or STUDENT_GUIDED}"),
    describe=lambda depths: [f"guided {g}: " + (f"{k}x{k} regressor" if k else f"not run: {why}")
                             for g, k, why in guided_positions()],
    extra_info=lambda pieces, pooling: {"positions": [dict(layer=g, kernel=k, error=e)
                                                      for g, k, e in guided_positions(pieces, pooling)]})

# -- gradients ---------------------------------------------------------------------------------
# 250 probe images every 3 steps took a sixth of the experiment's time; a layer's output scale over
# 100 images is already a stable average
GRADIENTS = Experiment(
    "gradients", "Where does the training signal go: each layer's gradient, update and output scale over the first "
                 "epochs of backprop, KD and both FitNets stages?",
    "per-layer gradient norms and activation scales, first epochs", _MNIST_BUDGET, (0, 1, 2, 3),
    lambda seeds, init, depths, methods: [Run("gradients", m, s, "code") for s in seeds for m in methods],
    pairs=lambda columns: [], figure="gradients", recorder=Recorder(epochs=5, every=5, probe=100))

# -- floor: RMSProp's floor on a gradient's root mean square lowered from the official 1e-5 -------
# to 1e-8 (the size of the usual additive epsilon)
LOW_FLOOR = 1e-8


def _floor_pairs(columns):
    # the floor's effect on each method; then, with the floor lowered, do KD and hints still do better
    # than backprop (now that it trains), and the paper's FitNets against it. deep-floor has no KD
    # column: its KD pairs drop out
    bp, kd, fn = (column_key(m, floor=LOW_FLOOR) for m in PAPER_METHODS)
    return [(bp, "backprop"), (kd, "kd"), (fn, "fitnet"), (bp, "kd"), (kd, bp), (fn, bp), ("fitnet", bp)]


FLOOR = Experiment(
    "floor", "With RMSProp's floor lowered from 1e-5 to 1e-8, does plain backprop train, and do hints still help?",
    "the three methods with RMSProp's floor lowered to 1e-8", _MNIST_BUDGET, (0, 1, 2, 3, 4),
    lambda seeds, init, depths, methods: [r for s in seeds for m in methods for r in (
        Run("init", m, s, "code"), Run("floor", m, s, "code", floor=LOW_FLOOR))],
    pairs=_floor_pairs)


def _deep_floor_plan(seeds, init, depths, methods):
    (n, w, _), = depth_students([max(depths)])  # the deepest depth student, beside the depth experiment's runs
    return [r for s in seeds for m in ("backprop", "fitnet")
            for r in (Run("depth", m, s, init, n, w), Run("deep-floor", m, s, init, n, w, floor=LOW_FLOOR))]


DEEP_FLOOR = Experiment(
    "deep-floor", "On the deepest depth student, does depth rather than the optimiser's floor still stop plain "
                  "backprop?", "backprop and FitNets on the deepest depth student, RMSProp floor 1e-8",
    _DEPTH_BUDGET, (0, 1, 2), _deep_floor_plan, pairs=_floor_pairs, uses_depths=True)

# -- compute: the comparisons at equal compute ------------------------------------------------
# FitNets' two stages shortened to the one-stage budget ('equal': 10 + 20 against 30, stage 1 a
# third as in the study's 15 + 30), and the one-stage methods lengthened to FitNets' total ('long':
# 45); matched in epochs, that is in steps and examples seen (the multiplications are recorded:
# stage 1 trains only part of the student)


def _compute_plan(seeds, init, depths, methods):
    return [r for s in seeds for r in
            [Run("init", m, s, "code") for m in methods]
            + [Run("compute", "fitnet", s, "code", budget="equal")]
            + [Run("compute", m, s, "code", budget="long") for m in methods if m != "fitnet"]]


def _compute_pairs(columns):
    short = column_key("fitnet", budget="equal")
    kd_long, bp_long = (column_key(m, budget="long") for m in ("kd", "backprop"))
    return [(short, "kd"), (short, "backprop"), ("fitnet", kd_long), ("fitnet", bp_long), ("fitnet", "kd"),
            (short, "fitnet"), (kd_long, "kd")]


COMPUTE = Experiment(
    "compute", "From the official init, do FitNets beat KD and backprop when every method gets the same number of "
               "training epochs (stage 1 + stage 2 = 10 + 20 against 30, and 15 + 30 against 45)?",
    "the three methods at equal epochs: FitNets 10 + 20 against 30, KD and backprop 45 against 15 + 30",
    _MNIST_BUDGET, (0, 1, 2, 3, 4, 5), _compute_plan, pairs=_compute_pairs)

# -- floor-gradients: the gradient traces with the floor lowered -----------------------------------
FLOOR_GRADIENTS = Experiment(
    "floor-gradients", "With RMSProp's floor at 1e-8, which layers does backprop move in the first epochs: is the "
                       "first layer's per-element gradient still under the floor?",
    "per-layer gradient norms and activation scales, first epochs, floor 1e-8", _MNIST_BUDGET, (0, 1, 2, 3),
    lambda seeds, init, depths, methods: [Run("floor-gradients", m, s, "code", floor=LOW_FLOOR) for s in seeds
                                          for m in methods],
    pairs=lambda columns: [], figure="gradients", recorder=GRADIENTS.recorder)

# -- floor-depth: the depth pattern without the floor in the way -----------------------------------
FLOOR_DEPTHS = (5, 7)


def _floor_depth_plan(seeds, init, depths, methods):
    return [r for n, w, _ in depth_students([d for d in depths if d in FLOOR_DEPTHS] or FLOOR_DEPTHS)
            for s in seeds for m in ("backprop", "kd")
            for r in (Run("depth", m, s, init, n, w), Run("floor-depth", m, s, init, n, w, floor=LOW_FLOOR))]


FLOOR_DEPTH = Experiment(
    "floor-depth", "With RMSProp's floor at 1e-8, do backprop and KD train the 5- and 7-layer depth students that "
                   "they leave at chance at the official floor?",
    "backprop and KD at depths 5 and 7 with RMSProp's floor at 1e-8", _DEPTH_BUDGET, (0, 1, 2),
    _floor_depth_plan, pairs=_floor_pairs, uses_depths=True)

# -- table4: the paper's Table 4 on full MNIST ---------------------------------------------------
# a reduced budget (the paper's: up to 500 epochs with early stopping) at equal epochs: FitNets'
# stage 1 + stage 2 = 10 + 20 against 30; the teacher from Glorot init (from the official init it
# needs tens of epochs to leave chance, docs/fitnets.md)
TABLE4 = Experiment(
    "table4", "On full MNIST (the paper's 50,000 / 10,000 / 10,000 split), how do backprop, KD and FitNets compare "
              "at a reduced, equal budget, beside the paper's Table 4?",
    "the paper's Table 4 on full MNIST (needs --data-dir): 30 epochs, FitNets 10 + 20",
    Budget(teacher=12, student=30, hints=10, patience=100, stage2=20), (0, 1, 2),
    lambda seeds, init, depths, methods: [Run("table4", m, s, "code") for s in seeds for m in methods],
    full_data=True, teacher_init="glorot", args="--data-dir DIR --out models/full_mnist --resume",
    out="models/full_mnist")

# -- data: is frozen backprop a property of the embedded digits? ---------------------------------
# training sets of different origin and size from the full files' training part, every cell
# measured on the same held-out digits (the paper's validation 10,000 and the test 10,000); the
# teacher is table4's (trained on all 50,000). Budget: a fixed number of steps, the study's 810
# (30 epochs of 3,500 digits at batch 128), as whole epochs of each set; FitNets' two stages in
# the same epochs (stage 1 a third). At fixed epochs the 3,500-digit cells are the same runs; the
# larger sets at 30 epochs would cost 3 to 14 times more each and are not run.
DATA_SETS = ("embedded", "random-3500-s0", "balanced-3500-s0", "rule-25000", "random-3500-s1", "balanced-3500-s1",
             "random-10000-s0", "random-10000-s1", "random-25000-s0", "random-25000-s1", "all")
STUDY_STEPS_PER_EPOCH = 3500 // 128   # the embedded training digits at batch 128: 27
# the sets pooled, by how their classes were drawn: (nearly) equal class counts by construction
# (the rule's 500 of each class, split; 350 of each class) against random draws from the file;
# 3 seeds a cell can never separate in Fisher's test (p >= 0.1), 12 or more pooled can
DATA_POOLS = (("class-balanced sets pooled", tuple(f"data {d}" for d in DATA_SETS
                                                   if d.startswith(("embedded", "rule", "balanced")))),
              ("random sets pooled", tuple(f"data {d}" for d in DATA_SETS if d.startswith(("random", "all")))))


def _steps_budget(budget, steps_per_epoch):
    # the steps of ``budget.student`` epochs of 3,500 digits (810 for 30), as whole epochs of this set
    steps = budget.student * STUDY_STEPS_PER_EPOCH
    epochs = min(budget.student, max(1, round(steps / max(1, steps_per_epoch))))
    hints = max(1, round(epochs / 3))
    return replace(budget, student=epochs, hints=hints, stage2=max(1, epochs - hints))


DATA = Experiment(
    "data", "Is backprop's failure from the official init a property of the 3,500 embedded digits, of small data, or "
            "of neither: the three methods on other subsets of the same size and on 10,000, 25,000 and 50,000 "
            "digits, at the study's number of steps?",
    "training sets of other origin and size from the full files (needs --data-dir), 810 steps",
    TABLE4.budget, (0, 1, 2),
    # backprop's runs first: its failure is the question
    lambda seeds, init, depths, methods: [Run("data", m, s, "code", data=d) for m in methods for d in DATA_SETS
                                          for s in seeds],
    full_data=True, teacher_init="glorot", budget_of=_steps_budget, pools=DATA_POOLS,
    args="--data-dir DIR --out models/data --teacher models/full_mnist/teacher/teacher.model.npz --resume",
    out="models/data")

# -- balance: does class balance freeze backprop? -----------------------------------------------
# the direct test of what data's backprop runs suggest (frozen on the embedded, rule and balanced
# sets, training on random ones, whose class counts differ by sampling): the same digits with
# their classes reweighed by dropping digits (data.reweigh_classes), backprop at data's budget. A
# random subset made class-balanced, the embedded digits given the training part's class
# frequencies; 6 seeds a cell, since 3 against 3 can never separate in Fisher's test (p >= 0.1).
# The seeds data runs are its own runs; the further seeds of the unchanged sets live here.
BALANCE_SETS = (("embedded", "skewed"), ("random-3500-s0", "rebalanced"))


def _balance_plan(seeds, init, depths, methods):
    return [r for s in seeds for parent, how in BALANCE_SETS for r in (
        Run("data" if s in DATA.seeds else "balance", "backprop", s, "code", data=parent),
        Run("balance", "backprop", s, "code", data=f"{parent}-{how}"))]


def _balance_place(run):
    for parent, how in BALANCE_SETS:
        if run.data in (parent, f"{parent}-{how}"):
            return f"data {parent}", column_key(run.method, classes=how if run.data != parent else "")
    raise ValueError(f"run {run.name} is not one of the balance experiment's")


BALANCE = Experiment(
    "balance", "Is class balance what keeps backprop at chance on the embedded digits: does it train on them with "
               "the training part's class frequencies, and freeze on a random subset made class-balanced?",
    "backprop on the same digits with their classes reweighed (needs --data-dir), 810 steps",
    TABLE4.budget, (0, 1, 2, 3, 4, 5), _balance_plan,
    pairs=lambda columns: [("backprop", c) for c in columns if c != "backprop"], place=_balance_place,
    full_data=True, teacher_init="glorot", budget_of=_steps_budget,
    args="--data-dir DIR --out models/data --teacher models/full_mnist/teacher/teacher.model.npz --resume",
    out="models/data")

# -- teachers: the teacher as a factor ----------------------------------------------------------
# every other experiment distils from one teacher (seed 0); KD against FitNets, as published and
# at equal epochs, with the teachers of two more seeds (each trained once into <out>/teacher-seedK)
TEACHER_SEEDS = (1, 2)


def _teachers_plan(seeds, init, depths, methods):
    runs = []
    for k in (0,) + TEACHER_SEEDS:
        exp = "teachers" if k else "init"   # teacher 0's runs are the init and compute experiments' own
        runs += [r for s in seeds for r in (
            Run(exp, "kd", s, "code", teacher=k), Run(exp, "fitnet", s, "code", teacher=k),
            Run(exp if k else "compute", "fitnet", s, "code", budget="equal", teacher=k))]
    return runs


TEACHERS = Experiment(
    "teachers", "Do KD and FitNets compare the same way with teachers of other seeds, as published and at equal "
                "epochs?", "KD against FitNets with three teachers (seeds 0, 1, 2)", _MNIST_BUDGET, (0, 1, 2, 3, 4, 5),
    _teachers_plan, pairs=lambda columns: [("kd", "fitnet"), ("kd", column_key("fitnet", budget="equal"))],
    place=lambda run: (f"teacher {run.teacher}", run.column), across_cells=True)

EXPERIMENTS = {e.name: e for e in (INIT, DEPTH, CURVES, ABLATE, POSITION, GRADIENTS, FLOOR, DEEP_FLOOR, COMPUTE,
                                   FLOOR_GRADIENTS, FLOOR_DEPTH, TABLE4, DATA, BALANCE,
                                   TEACHERS)}


def experiment(name):
    """The record of experiment ``name`` (ConfigError naming the known ones)."""
    if name not in EXPERIMENTS:
        raise ConfigError("experiment", f"must be one of {', '.join(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def plan(name, seeds, init="code", depths=DEPTHS, methods=PAPER_METHODS):
    """The runs of experiment ``name``, in the order they are trained."""
    exp = experiment(name)
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) and x >= 0 for x in seeds):
        raise ConfigError("seeds", f"must be distinct non-negative integers, got {list(seeds)}")
    if exp.uses_depths and (not depths or not all(isinstance(n, int) and n >= 3 for n in depths)):
        raise ConfigError("depths", f"must be integers >= 3 (two poolings and a last layer), got {list(depths)}")
    return exp.plan(seeds, init, depths, methods)
