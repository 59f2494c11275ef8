"""Figures of the FitNets runs and study (optional extra ``plot``: matplotlib).

matplotlib is imported inside the functions, with the non-interactive Agg backend, so
``import tinyfit`` never loads it; without it ``available()`` is False and callers print
tables only. Every figure is written atomically as a PNG.
"""
from __future__ import annotations

import io

from .files import atomic_write

__all__ = ["available", "curves", "grouped_errors", "errors_by_depth"]

# one colour per method, the same in every figure
COLORS = {"student, backprop": "#d62728", "student, KD": "#1f77b4", "student, FitNets (hints + KD)": "#2ca02c",
          "backprop": "#d62728", "kd": "#1f77b4", "fitnet": "#2ca02c"}
LABELS = {"backprop": "backprop", "kd": "KD", "fitnet": "FitNets (hints + KD)"}


def available():
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'tinyfit[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def curves(rows, path, title=""):
    """Training loss and validation error per epoch, one line per student row (several seeds
    of a method share its colour; rows carry a
    ``history`` of {epoch, train_loss, val}). FitNets' curve is its stage 2; its loss, like
    KD's, is the KD objective (labels + lambda x softened teacher), not comparable in value to
    backprop's cross-entropy."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    seen = set()
    alpha = 1.0 if len(rows) <= 3 else 0.6
    for r in rows:
        h = r.get("history") or []
        if not h:
            continue
        ep = [e["epoch"] for e in h]
        c = COLORS.get(r["method"])
        label = None if r["method"] in seen else r["method"]
        seen.add(r["method"])
        a.plot(ep, [e["train_loss"] for e in h], color=c, label=label, alpha=alpha, lw=1.2)
        b.plot(ep, [100 * e["val"] for e in h], color=c, label=label, alpha=alpha, lw=1.2)
    a.set(xlabel="epoch", ylabel="training loss (each method's objective)", yscale="log")
    b.set(xlabel="epoch (FitNets: stage 2, after stage 1)", ylabel="validation error (%)", yscale="log")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _points(ax, x, values, color, jitter):
    ax.scatter([x + jitter] * len(values), values, s=12, color=color, alpha=0.6, zorder=3, linewidths=0)


def grouped_errors(groups, path, title="", ylabel="test error (%)"):
    """One panel per group (each with its own scale): bars of the mean test error, a whisker of
    one standard deviation over seeds, every seed's point, and the mean written on the bar.

    groups: [(group label, {method: [error per seed, in %]})]."""
    import statistics
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(1.5 + 3.2 * len(groups), 3.9), squeeze=False)
    for ax, (label, g) in zip(axes[0], groups):
        methods = [m for m in LABELS if m in g]
        for x, m in enumerate(methods):
            v = g[m]
            mean, sd = statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0
            ax.bar(x, mean, 0.7, yerr=sd, color=COLORS[m], alpha=0.55, capsize=3, label=LABELS[m])
            _points(ax, x, v, COLORS[m], 0)
            ax.annotate(f"{mean:.2f}", (x, mean), textcoords="offset points", xytext=(10, 3), fontsize=8)
        ax.set_xticks(range(len(methods)), [LABELS[m].split(" (")[0] for m in methods])
        ax.set(title=label, ylabel=ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def errors_by_depth(depths, by_method, path, title="", ylabel="test error (%)"):
    """Test error against depth: one line per method (mean over seeds), a bar of one standard
    deviation, and every seed's point. by_method: {method: [[errors of the seeds] per depth]}."""
    import statistics
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, (m, per_depth) in enumerate(by_method.items()):
        off = (k - (len(by_method) - 1) / 2) * 0.08
        means = [statistics.mean(v) for v in per_depth]
        sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_depth]
        ax.errorbar([d + off for d in depths], means, yerr=sds, color=COLORS[m], label=LABELS[m], capsize=3,
                    marker="o", ms=4)
        for d, v in zip(depths, per_depth):
            _points(ax, d + off, v, COLORS[m], 0)
    ax.set_xticks(depths)
    ax.set(xlabel="convolutional layers (same multiplications per example)", ylabel=ylabel, yscale="log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
