"""The training methods, one record each: what a method needs, what it trains and how it is shown.

The pipeline trains a student by reading its method's record (``train_student``), the
settings a run depends on are built from it (``pipeline.run_settings``), and the tables and
figures take their labels and colours from it. A new method is one record here plus, if it
trains in a new way, the stage function it names in ``tinyfit.fitnets``.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Method", "METHODS", "PAPER_METHODS", "VARIANTS", "ALL_METHODS", "method", "row_label",
           "LIBRARY_HINT_WEIGHT"]

# RepDistiller's FitNet weight, 100 x the mean squared error, in the paper's hint-loss units for the
# MNIST student's 4x4x48 hint: 200 / (H W C) = 0.26 (docs/study.md)
LIBRARY_HINT_WEIGHT = 0.26


@dataclass(frozen=True)
class Method:
    """One way to train a student.

    key: its name in rows, files and flags. label: its column in the study's tables. row_label:
    its row in a run's results table. color: its colour in every figure. teacher: it needs the
    trained teacher. kd: its last stage's loss is KD (labels + lambda x softened teacher), else
    cross-entropy. stage1: what stage 1 fits before the whole student is trained ('hints',
    'untrained-teacher hints', 'labels'), None for one stage. hint_weight: one stage of CE +
    beta x hint (beta: ``PipelineConfig.hint_weight``). stream: the random stream
    (``pipeline.STAGES``) of its student's init and batches (two-stage methods: stage 1's is
    'stage1'). shares_stage1: the method whose finished stage 1 it may take instead of training
    its own (the same kind and settings: bit-identical). paper: one of the paper's three
    methods (else an ablation, never called FitNets)."""
    key: str
    label: str
    row_label: str
    color: str
    stream: str
    teacher: bool = True
    kd: bool = False
    stage1: str | None = None
    hint_weight: bool = False
    shares_stage1: str | None = None
    paper: bool = False


_ALL = (
    Method("backprop", "backprop", "student, backprop", "#d62728", "backprop", teacher=False, paper=True),
    Method("kd", "KD", "student, KD", "#1f77b4", "kd", kd=True, paper=True),
    Method("fitnet", "FitNets (hints + KD)", "student, FitNets (hints + KD)", "#2ca02c", "fitnet", kd=True,
           stage1="hints", paper=True),
    # backprop's student and batches; only the loss differs
    Method("single-stage", "single-stage CE + beta x hint (beta chosen on validation)",
           "student, single-stage CE + beta x hint", "#9467bd", "backprop", hint_weight=True),
    Method("dsn-kd", "label stage 1 (DSN-style) + KD", "student, label stage 1 (DSN-style) + KD", "#8c564b",
           "fitnet", kd=True, stage1="labels"),
    Method("random-hints-kd", "random-teacher hints + KD", "student, random-teacher hints + KD", "#7f7f7f",
           "fitnet", kd=True, stage1="untrained-teacher hints"),
    Method("hints-backprop", "hints + backprop", "student, hints + backprop", "#e377c2", "fitnet",
           stage1="hints", shares_stage1="fitnet"),
)
METHODS = {m.key: m for m in _ALL}
PAPER_METHODS = tuple(m.key for m in _ALL if m.paper)
VARIANTS = tuple(m.key for m in _ALL if not m.paper)
ALL_METHODS = PAPER_METHODS + VARIANTS


def method(key):
    """The record of method ``key`` (ValueError naming the known ones)."""
    if key not in METHODS:
        raise ValueError(f"method must be one of {', '.join(ALL_METHODS)}, got {key!r}")
    return METHODS[key]


def row_label(key):
    """The label of a results row: its method's, or the key itself (the teacher)."""
    return METHODS[key].row_label if key in METHODS else key
