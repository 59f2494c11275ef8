"""Figures of the FitNets runs and study (optional extra ``plot``: matplotlib).

matplotlib is imported inside the functions, with the non-interactive Agg backend, so
``import tinyfit`` never loads it; without it ``available()`` is False and callers print
tables only. Every figure is written atomically as a PNG.
"""
from __future__ import annotations

import io

from .files import atomic_write
from .methods import METHODS

__all__ = ["available", "curves", "grouped_errors", "errors_by_depth", "gradient_flow"]

# each method has one colour in every figure (its record's); other columns take the palette in order
PALETTE = ("#17becf", "#bcbd22", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


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


def _color(key, i=0):
    return METHODS[key].color if key in METHODS else PALETTE[i % len(PALETTE)]


def _axis(ax, values, axis="y"):
    """A log scale only where the values span more than a factor of ten (else linear), with
    plain tick labels either way (never 9.45 x 10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    v = [x for x in values if x > 0]
    target = ax.yaxis if axis == "y" else ax.xaxis
    if v and max(v) / min(v) > 10:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        target.set_minor_formatter(NullFormatter())
    target.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


def _ci(values):
    """(mean, whisker below, whisker above) of errors in %, the 95% t interval cut to 0-100%
    as in the tables (with few bimodal seeds it can reach past either end)."""
    from .stats import mean_ci
    mean, _, low, high = mean_ci(values)
    low, high = max(low, 0.0), min(high, 100.0)
    return mean, (0.0 if low != low else mean - low), (0.0 if high != high else high - mean)


def curves(rows, path, title=""):
    """Training loss and validation error against the training epochs spent so far, one line
    per student row (several seeds of a method share its colour; rows carry a ``history`` of
    {epoch, train_loss, val}). A two-stage run's curve is its stage 2, drawn after the epochs
    of its stage 1 (``hint_history``; a grey band), so that methods are compared at equal
    epochs; its loss, like KD's, is the KD objective (labels + lambda x softened teacher), not
    comparable in value to backprop's cross-entropy. A dotted line marks the epoch where lambda
    reaches its final value: with the official schedule (final 0) the KD objective becomes the
    plain cross-entropy there, so its value drops steeply."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    seen = set()
    alpha = 1.0 if len(rows) <= 3 else 0.6
    losses, errs, saturate, stage1 = [], [], set(), set()
    for r in rows:
        h = r.get("history") or []
        if not h:
            continue
        before = len(r.get("hint_history") or [])
        if before:
            stage1.add(before)
        ep = [e["epoch"] + before for e in h]
        c = METHODS[r["method"]].color if r["method"] in METHODS else None
        label = None if r["method"] in seen else r.get("label", r["method"])
        seen.add(r["method"])
        losses += [e["train_loss"] for e in h]
        errs += [100 * e["val"] for e in h]
        a.plot(ep, [e["train_loss"] for e in h], color=c, label=label, alpha=alpha, lw=1.2)
        b.plot(ep, [100 * e["val"] for e in h], color=c, label=label, alpha=alpha, lw=1.2)
        sched = (r.get("settings") or {}).get("lambda_schedule")
        if sched and sched["saturate"] + before <= ep[-1]:
            saturate.add((sched["saturate"] + before, sched["final"]))
    last = max((h["epoch"] + len(r.get("hint_history") or []) for r in rows for h in r.get("history") or []),
               default=0)
    for n in sorted(stage1):
        for ax in (a, b):
            ax.axvspan(0.5, n + 0.5, color="0.85", alpha=0.5, lw=0)
        b.annotate("stage 1\n(hints)", (n / 2 + 0.5, 1), xycoords=("data", "axes fraction"), xytext=(0, -22),
                   textcoords="offset points", ha="center", fontsize=7, color="0.3")
    for ep, final in sorted(saturate):
        a.axvline(ep, color="0.4", ls=":", lw=1)
        right = ep < last  # at the last epoch, the label goes left of the line, inside the axes
        a.annotate(f"lambda reaches {final:g}:\nKD objective = CE" if final == 0 else f"lambda reaches {final:g}",
                   (ep, 1), xycoords=("data", "axes fraction"), xytext=(3 if right else -3, -22),
                   textcoords="offset points", ha="left" if right else "right", fontsize=7, color="0.3")
    a.set(xlabel="training epochs so far (two-stage methods: both stages)",
          ylabel="training loss (each method's objective)")
    b.set(xlabel="training epochs so far (two-stage methods: both stages)", ylabel="validation error (%)")
    _axis(a, losses)
    _axis(b, errs)
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _points(ax, x, values, color, jitter):
    ax.scatter([x + jitter] * len(values), values, s=12, color=color, alpha=0.6, zorder=3, linewidths=0)


# a run at or above this test error (%) stayed at chance (ten classes: about 90%); such runs are
# counted under the axis, not drawn, so that the trained runs' differences stay visible
CHANCE_PCT = 50.0
PANELS_PER_ROW = 5   # more groups wrap onto further rows, so that a page can show them


def grouped_errors(groups, path, title="", ylabel="test error (%)"):
    """One panel per group (each with its own scale) of the runs that left chance: bars of the
    mean test error with a whisker of its 95% t interval over seeds, every seed's point and the
    mean written on the bar; a column with runs at chance shows its trained runs as dots only
    (no mean bar: its errors are bimodal), and every column says under its label how many
    seeds left chance.

    groups: [(group label, [(bar label, method key, [error per seed, in %])])]."""
    plt = _plt()
    width = max(len(bars) for _, bars in groups)
    across = min(len(groups), PANELS_PER_ROW)
    down = -(-len(groups) // across)
    fig, axes = plt.subplots(down, across, figsize=(1.5 + (0.8 * width + 0.8) * across, 4.4 * down), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, (label, bars) in zip(axes.flat, groups):
        top = 0.0
        for x, (_, key, v) in enumerate(bars):
            trained = [e for e in v if e < CHANCE_PCT]
            color = _color(key, x)
            if trained and len(trained) == len(v):
                mean, lo, hi = _ci(v)
                ax.bar(x, mean, 0.7, yerr=[[lo], [hi]], color=color, alpha=0.55, capsize=3)
                ax.annotate(f"{mean:.1f}", (x, max([mean + hi] + v)), textcoords="offset points", xytext=(0, 3),
                            fontsize=7, ha="center")
                top = max(top, mean + hi, *v)
            elif trained:
                top = max(top, *trained)
            _points(ax, x, trained, color, 0)
        names = [f"{name}\n{sum(e < CHANCE_PCT for e in v)} of {len(v)} left chance" for name, _, v in bars]
        ax.set_xticks(range(len(bars)), names, rotation=30 if width > 3 else 0,
                      ha="right" if width > 3 else "center", fontsize=7)
        ax.set(title=label, ylabel=ylabel + ", runs that left chance")
        ax.set_ylim(0, 1.15 * top if top else 1.0)
        ax.set_xlim(-0.6, len(bars) - 0.4)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def errors_by_depth(depths, by_method, path, title="", ylabel="test error (%)"):
    """Test error against depth: one line per method (mean over seeds), a bar of its 95% t
    interval, and every seed's point. by_method: {method: [[errors of the seeds] per depth]}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    values = []
    for k, (m, per_depth) in enumerate(by_method.items()):
        off = (k - (len(by_method) - 1) / 2) * 0.08
        cis = [_ci(v) for v in per_depth]
        ax.errorbar([d + off for d in depths], [c[0] for c in cis], yerr=[[c[1] for c in cis], [c[2] for c in cis]],
                    color=METHODS[m].color, label=METHODS[m].label, capsize=3, marker="o", ms=4)
        for d, v in zip(depths, per_depth):
            _points(ax, d + off, v, METHODS[m].color, 0)
            values += v
    ax.set_xticks(depths)
    ax.set(xlabel="convolutional layers (same multiplications per example)", ylabel=ylabel)
    _axis(ax, values)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


GRADIENT_PANELS = (("backprop", "backprop", "backprop"), ("kd", "kd", "KD"),
                   ("fitnet", "stage1", "FitNets stage 1 (hints)"), ("fitnet", "fitnet", "FitNets stage 2 (KD)"))


def _trace_series(rows, method, stage, field):
    """{layer: [per-seed lists of (global step, value)]} from the rows' gradient traces."""
    out = {}
    for r in rows:
        if r["method"] != method:
            continue
        per_epoch = None
        for rec in r.get("trace", []):
            if rec["stage"] != stage or field not in rec:
                continue
            per_epoch = per_epoch or max(x["step"] for x in r["trace"] if x["stage"] == stage) + 1
            t = (rec["epoch"] - 1) + rec["step"] / per_epoch
            for layer, v in rec[field].items():
                out.setdefault(layer, {}).setdefault(r["seed"], []).append((t, v))
    return out


def gradient_flow(rows, path, title="", sizes=None, floor=None):
    """Where the training signal goes: for backprop, KD and FitNets' two stages (columns),
    each layer's gradient norm per step (top), the size of the update the optimiser made to
    it, the scale (root mean square) of its output on a fixed probe batch and, given the
    layers' weight counts ``sizes`` ({layer: n}), the per-element gradient (the norm over
    sqrt(n)) against RMSProp's ``floor`` (a dashed line): a layer whose per-element gradient is
    under the floor moves in proportion to its gradient. Geometric means over seeds, log
    scales. Layers keep one colour in every panel, from the input (light) to the classifier
    (dark); the stage-1 head is grey."""
    import math
    plt = _plt()
    fields = (("grad", "gradient norm"), ("update", "update norm"), ("act", "output scale (RMS)"))
    if sizes:
        fields += (("grad_rms", "per-element gradient"),)
        rows = [dict(r, trace=[dict(t, grad_rms={k: v / math.sqrt(sizes[k]) for k, v in t["grad"].items()
                                                  if k in sizes}) for t in r.get("trace", [])]) for r in rows]
    fig, axes = plt.subplots(len(fields), len(GRADIENT_PANELS), figsize=(3.4 * len(GRADIENT_PANELS), 2.9 * len(fields)),
                             squeeze=False, sharey="row")
    cmap = plt.get_cmap("viridis")
    order = []
    for r in rows:
        for rec in r.get("trace", [])[:1] + r.get("trace", [])[-1:]:
            order += [k for k in rec["grad"] if k not in order]
    net = [k for k in order if "/" not in k and k != "regressor" and k != "classifier"]
    color = {k: cmap(1 - (i + 0.5) / max(len(net), 1)) for i, k in enumerate(net)}
    for j, (method, stage, label) in enumerate(GRADIENT_PANELS):
        for i, (field, name) in enumerate(fields):
            ax = axes[i][j]
            for layer, by_seed in _trace_series(rows, method, stage, field).items():
                seeds = list(by_seed.values())
                n = min(len(q) for q in seeds)
                t = [p[0] for p in seeds[0][:n]]
                g = [math.exp(sum(math.log(max(q[k][1], 1e-30)) for q in seeds) / len(seeds)) for k in range(n)]
                ax.plot(t, g, color=color.get(layer, "0.55"), lw=1.1, label=layer,
                        ls="-" if layer in color else "--")
            ax.set_yscale("log")
            if field == "grad_rms" and floor:
                ax.axhline(floor, color="k", ls="--", lw=1, label=f"RMSProp floor {floor:g}")
            ax.grid(alpha=0.3, which="major")
            if i == 0:
                ax.set_title(label, fontsize=9)
            if j == 0:
                ax.set_ylabel(name + " per layer")
            if i == len(fields) - 1:
                ax.set_xlabel("epoch")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


def method_diagram(teacher, student, hint, guided, regressor, path):
    """The method in one picture, three panels: the teacher (frozen; its hint layer marked),
    stage 1 (the student's layers up to the guided layer and the regressor trained on the hint
    loss; the layers above unused) and stage 2 (every student layer trained on the KD loss from
    stage 1's weights; the regressor discarded). teacher, student: [(layer, description)] from
    the input up; hint, guided: layer names; regressor: its description."""
    plt = _plt()
    from matplotlib.patches import FancyBboxPatch
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.6))
    trained, unused, frozen, reg_c = "#98df8a", "0.9", "#9ecae1", "#ffbb78"

    def box(ax, x, y, w, h, text, fc, ec="0.3", ls="-", color="k"):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.005", fc=fc, ec=ec, lw=1.2, ls=ls))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=6.8, color=color)

    def column(ax, layers, colour_of, x, w):
        pos = {}
        for i, (name, desc) in enumerate(layers):
            y = 0.06 + i * 0.8 / len(layers)
            fc, ec = colour_of(name)
            box(ax, x, y, w, 0.09, f"{name}: {desc}", fc, ec)
            pos[name] = y
        return pos

    lower = [n for n, _ in student][:[n for n, _ in student].index(guided) + 1]
    ax = axes[0]
    y = column(ax, teacher, lambda n: (frozen, "#d62728" if n == hint else "0.3"), 0.05, 0.7)[hint]
    ax.annotate("hint", (0.75, y + 0.04), (0.82, y + 0.04), fontsize=8, color="#d62728", va="center",
                arrowprops=dict(arrowstyle="->", color="#d62728"))
    ax.set_title("teacher\n(trained first, then frozen)", fontsize=9)
    ax = axes[1]
    y = column(ax, student, lambda n: (trained if n in lower else unused, "0.3"), 0.13, 0.52)[guided]
    ax.annotate("guided", (0.13, y + 0.045), (0.0, y + 0.045), fontsize=7.5, va="center",
                arrowprops=dict(arrowstyle="->"))
    box(ax, 0.69, y + 0.14, 0.3, 0.13, "regressor\n" + regressor, reg_c)
    ax.annotate("", (0.84, y + 0.14), (0.65, y + 0.045), arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(0.84, y + 0.3, "hint loss:\n|hint - r(guided)|^2 / 2", ha="center", fontsize=7.5)
    ax.set_title("stage 1: the green layers and the regressor\ntrained on the hint loss; the grey ones unused",
                 fontsize=9)
    ax = axes[2]
    column(ax, student, lambda n: (trained, "0.3"), 0.13, 0.52)
    box(ax, 0.69, y + 0.14, 0.3, 0.13, "regressor\ndiscarded", "white", "0.6", "--", "0.5")
    ax.text(0.5, 0.89, "KD loss: CE(labels) + lambda x CE(teacher, student),\nboth softened at temperature tau",
            ha="center", fontsize=7.5)
    ax.set_title("stage 2: every layer trained on KD,\nthe green ones of stage 1 starting from its weights",
                 fontsize=9)
    for ax in axes:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
    fig.text(0.5, 0.02, "the exported student (model file, ONNX) holds the student's layers only", ha="center",
             fontsize=8.5, color="0.3")
    return _save(fig, path)
