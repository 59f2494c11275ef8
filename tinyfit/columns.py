"""The study's column keys: what a run stands for within its cell, built and read in one place.

A key is a method (``"kd"``), a method at another RMSProp floor (``"backprop floor=1e-08"``),
a single-stage hint weight (``"single-stage beta=0.26"``), a method with another epoch budget
(``"kd budget=long"``: as long as FitNets' two stages; ``"fitnet budget=equal"``: its two stages
in the one-stage epochs), a method on its cell's digits with classes reweighed (``"backprop
classes=rebalanced"``, ``data.reweigh_classes``), a guided layer (``"guided h2"``) or,
in a cell that compares one method across depths, a depth (``"depth 9"``). Every published
results file stores these strings, so their spelling never changes.
"""
from __future__ import annotations

from dataclasses import dataclass

from .methods import LIBRARY_HINT_WEIGHT, METHODS
from .models import STUDENT_GUIDED

__all__ = ["Column", "column_key", "parse_column", "column_label"]


@dataclass(frozen=True)
class Column:
    """A parsed column key; the fields that do not apply are empty (0, '')."""
    method: str = ""
    floor: float = 0.0
    beta: float = 0.0
    guided: str = ""
    depth: int = 0
    budget: str = ""
    classes: str = ""

    @property
    def key(self):
        if self.depth:
            return f"depth {self.depth}"
        if self.guided:
            return f"guided {self.guided}"
        if self.budget:
            return f"{self.method} budget={self.budget}"
        if self.classes:
            return f"{self.method} classes={self.classes}"
        if self.floor:
            return f"{self.method} floor={self.floor:g}"
        return f"{self.method} beta={self.beta:g}" if self.beta else self.method

    @property
    def grid_member(self):
        """A single-stage run at one hint weight of a grid (the weight is chosen on validation)."""
        return bool(self.beta)


def column_key(method, floor=0.0, beta=0.0, guided="", budget="", classes=""):
    """The key of a run's column: its guided layer, else its method with its epoch budget, class
    reweighting, floor or hint weight."""
    return Column(method, floor, beta if METHODS[method].hint_weight else 0.0, guided, budget=budget,
                  classes=classes).key


def parse_column(key):
    """The Column that ``key`` stands for (``column_key``'s inverse)."""
    if key.startswith("depth "):
        return Column(depth=int(key.split()[1]))
    if key.startswith("guided "):
        return Column("fitnet", guided=key.split()[1])
    method, _, rest = key.partition(" ")
    if rest.startswith("budget="):
        return Column(method, budget=rest[len("budget="):])
    if rest.startswith("classes="):
        return Column(method, classes=rest[len("classes="):])
    if rest.startswith("floor="):
        return Column(method, floor=float(rest[len("floor="):]))
    if rest.startswith("beta="):
        return Column(method, beta=float(rest[len("beta="):]))
    return Column(key)


BUDGET_LABELS = {"equal": "stage 1 + stage 2 in the one-stage epochs", "long": "as many epochs as both stages"}


def column_label(key):
    """The display label of a column key."""
    c = parse_column(key)
    base = METHODS[c.method].label if c.method in METHODS else c.method
    if c.depth:
        return key
    if c.guided:
        return f"hints at {c.guided} + KD" + (" (the paper's: FitNets)" if c.guided == STUDENT_GUIDED else "")
    if c.budget:
        return f"{base}, " + BUDGET_LABELS.get(c.budget, c.budget)
    if c.classes:
        return f"{base}, classes {c.classes}"
    if c.floor:
        return f"{base}, RMSProp floor {key.split('floor=')[1]}"
    if c.beta:
        return f"{c.method}, beta {c.beta:g}" + (" (RepDistiller's weight)" if c.beta == LIBRARY_HINT_WEIGHT else "")
    return base
