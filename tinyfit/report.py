"""Published numbers, generated from results files: the tables and quoted values in the README
and docs are rendered from ``docs/results/<name>/results.json`` (written by the example, the
study and the benchmark, each recording its commit, command, machine and wall time), never
typed. A document marks what is generated:

    <!-- tinyfit:table NAME KIND -->            a block, up to the next <!-- tinyfit:end -->
    <!--v FORMAT NAME/path/to/value-->6.53%<!--/v-->   one value inside a sentence
    <!-- tinyfit:alias @ic = init/summary/init code -->   a short name for a path, in that document

A compound format renders a whole phrase from one value: ``diff`` a paired comparison with its
interval, ``count`` how many seeds of a column left chance ("0 of 6").

``refresh(text, root)`` renders every marked part anew; ``stale(text, root)`` lists the parts
whose text differs from what the results files give now (a test runs it on every document,
so a number cannot go stale silently). Study summaries (intervals, verdicts) are recomputed
from the per-seed rows with the current statistics, so the documents follow the code.
"""
from __future__ import annotations

import json
import math
import os
import re

from .columns import column_label, parse_column
from .experiments import EXPERIMENTS
from .files import atomic_write
from .methods import METHODS, PAPER_METHODS
from .pipeline import format_table
from .summary import ALPHA, CHANCE_LINE, summarize

__all__ = ["load", "render_table", "render_value", "refresh", "stale", "figure", "TABLES", "FORMATS",
           "format_summary", "format_markdown", "errors_table", "pairs_table", "figure_of", "write_study"]

BLOCK = re.compile(r"(<!-- tinyfit:table (\S+) (\S+) -->\n)(.*?)(<!-- tinyfit:end -->)", re.S)
VALUE = re.compile(r"(<!--v (\S+) ([^>]+?)-->)(.*?)(<!--/v-->)", re.S)
ALIAS = re.compile(r"<!-- tinyfit:alias (@\S+) = ([^>]+?) -->")


def _experiments_view():
    return {"info": {"names": list(EXPERIMENTS)}, "experiments": list(EXPERIMENTS.values())}


# sources that are not results files: the experiments table itself (its lists in the docs)
VIRTUAL = {"experiments": _experiments_view}


def load(root, name):
    """{"info": the results file, "summary": the study summary recomputed from its rows
    (studies only)} of results ``name`` under ``root`` (or of a ``VIRTUAL`` source)."""
    if name in VIRTUAL:
        return VIRTUAL[name]()
    path = os.path.join(root, name, "results.json")
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the results file ({e}); publish the results first") from None
    view = {"info": info}
    if "experiment" in info:
        view["summary"] = summarize(info["results"], info["experiment"], info.get("smoke", False))
    if "experiment" in info and EXPERIMENTS[info["experiment"]].recorder:
        view["trace"] = trace_summary(info["results"])
    return view


def _minutes(s):
    return f"{s / 60:.0f} minutes" if s >= 600 else f"{s / 60:.1f} minutes"


FORMATS = {
    "pct": lambda v: f"{100 * v:.2f}%",
    "pct1": lambda v: f"{100 * v:.1f}%",
    "pts": lambda v: f"{100 * v:+.2f}",
    "num": lambda v: f"{v:g}",
    "int": lambda v: f"{int(v):,d}",
    "min": _minutes,
    "sec": lambda v: f"{v:.0f} s",
    "ms": lambda v: f"{v:.1f} ms",
    "x": lambda v: f"{v:.2f}",
    "sci": lambda v: f"{v:.1e}",
    "g2": lambda v: f"{v:.2g}",
    "commit": lambda v: (v or "unknown")[:7] + (" (uncommitted changes)" if v and v.endswith("+dirty") else ""),
    "str": str,
    "len": lambda v: str(len(v)),
    "list": lambda v: ", ".join(map(str, v)),
    "diff": lambda p: (f"{100 * p['mean_diff']:+.2f} points (95% interval {100 * p['low']:+.2f} to "
                       f"{100 * p['high']:+.2f})"),
    "count": lambda st: f"{st['left_chance']} of {st['n']}",
}


def _resolve(view, keys, where):
    cur = view
    for k in keys:
        if isinstance(cur, list):  # an index, or the element named k (a run, a method, a pair 'a-b')
            cur = cur[int(k)] if k.isdigit() else next((r for r in cur if k in (
                r.get("run"), r.get("method"), f"{r.get('a')}-{r.get('b')}")), None)
        elif isinstance(cur, dict):
            cur = cur.get(k)
        else:
            cur = None
        if cur is None:
            raise ValueError(f"{where}: no value at {'/'.join(keys)}")
    return cur


def _missing(root, name):
    return name not in VIRTUAL and not os.path.exists(os.path.join(root, name, "results.json"))


NOT_YET = "(not measured yet)"


def aliases(text):
    """{"@name": path} of the ``tinyfit:alias`` lines in ``text``."""
    return {m.group(1): m.group(2).strip() for m in ALIAS.finditer(text)}


def _expand(path, alias):
    head, sep, rest = path.strip().partition("/")
    if head.startswith("@"):
        if head not in alias:
            raise ValueError(f"{path}: no alias {head} in this document; define it with <!-- tinyfit:alias {head} = "
                             "NAME/path -->")
        return alias[head] + sep + rest
    return path.strip()


def render_value(root, fmt, path, alias=None):
    """The text of value ``path`` (NAME/key/key..., through the view of ``load``; a leading
    @name is one of ``alias``) in ``fmt``; NOT_YET while results NAME have not been published."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown value format {fmt!r}; known: {', '.join(FORMATS)}")
    path = _expand(path, alias or {})
    name, *keys = path.split("/")
    if _missing(root, name):
        return NOT_YET
    return FORMATS[fmt](_resolve(load(root, name), keys, path))


def _provenance(view):
    info = view["info"]
    p = info.get("provenance", {})
    m = p.get("machine", {})
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')} kernel)"
                     for b in (m.get("blas") or []))
    wall = info.get("wall_seconds")
    trained = [i["trained"] for i in info.get("invocations", []) if "trained" in i]
    runs = ""
    if trained and "results" in info and sum(trained) < len(info["results"]):
        found = "shared with another experiment or trained by an earlier, interrupted invocation"
        runs = (f" for the {sum(trained)} of {len(info['results'])} runs it trained (the others it found finished: "
                f"{found})" if sum(trained) else f" (it trained none of its {len(info['results'])} runs: it found "
                f"them finished, {found})")
    return (f"Made by commit `{FORMATS['commit'](p.get('commit'))}` with `{p.get('command')}` on {m.get('cpu')} "
            f"({m.get('cores')} cores; NumPy {m.get('numpy')}" + (f", {blas}" if blas else "") + ")"
            + (f", {_minutes(wall)} of wall time{runs}" if wall else "") + f", {p.get('date', 'date unknown')}.")


def _errors(view):
    return errors_table(view["summary"])


def _pairs(view):
    return pairs_table(view["summary"])


def _pipeline(view):
    return "```\n" + format_table(view["info"]["results"]) + "\n```"


def _grid(view):
    lines = ["| students' init | hint weight beta | seeds | mean validation error | mean test error | chosen |",
             "|---|---|---|---|---|---|"]
    for cell, s in view["summary"].items():
        ch = s.get("chosen") or {}
        chosen = ch.get(next(iter(ch), None))  # the chosen record opens with {method: its chosen column}
        for col, val in (ch.get("validation") or {}).items():
            lines.append(f"| {cell} | {parse_column(col).beta:g} | {', '.join(map(str, ch['seeds']))} | "
                         f"{100 * val:.2f}% | {100 * ch['test'][col]:.2f}% | {'yes' if col == chosen else ''} |")
    return "\n".join(lines)


def _family(view):
    """The depth experiment's students: conv layers, width, multiplications per example (and
    against the paper's MNIST student), weights."""
    from .models import mnist_student, multiplications
    target = multiplications(mnist_student())
    seen = {}
    for r in view["info"]["results"]:
        seen.setdefault(r["depth"], r)
    lines = [f"| conv layers | width | multiplications per example | vs the MNIST student ({target:,}) | weights |",
             "|---|---|---|---|---|"]
    for d, r in sorted(seen.items()):
        m = r["multiplications"]
        lines.append(f"| {d} | {r['width']} | {m:,} | {100 * (m - target) / target:+.1f}% | {r['parameters']:,} |")
    return "\n".join(lines)


def _positions(view):
    lines = ["| guided layer | regressor kernel |", "|---|---|"]
    for p in view["info"]["positions"]:
        lines.append(f"| {p['layer']} | " + (f"{p['kernel']}x{p['kernel']}" if p["kernel"] else
                                              f"none: {p['error'].split(';')[0]}") + " |")
    return "\n".join(lines)


def trace_summary(rows):
    """{regime: {layer: {grad0, grad1, update0, update1, act0, act1, rms0, rms1}}}: per regime
    of the gradients experiment ('backprop', 'kd', 'stage1', 'stage2') and layer, the geometric
    mean over seeds of the gradient norm, the update norm, the output scale and the
    per-element gradient (the norm over the square root of the layer's weight count, what
    RMSProp's floor is compared with) at the first step (0) and at the last recorded one (1)."""
    import math
    from .plots import GRADIENT_PANELS

    def gmean(vals):
        return math.exp(sum(math.log(max(v, 1e-300)) for v in vals) / len(vals)) if vals else None
    sizes, out = _layer_sizes(), {}
    for method, stage, _ in GRADIENT_PANELS:
        traces = [[t for t in r["trace"] if t["stage"] == stage] for r in rows if r["method"] == method]
        traces = [t for t in traces if t]
        if not traces:
            continue
        regime = {"fitnet": "stage2"}.get(stage, stage)
        out[regime] = {}
        for layer in traces[0][0]["grad"]:
            cell = {}
            for field, name in (("grad", "grad"), ("update", "update"), ("act", "act")):
                recs = [[t for t in tr if field in t and layer in t[field]] for tr in traces]
                recs = [q for q in recs if q]
                cell[name + "0"] = gmean([q[0][field][layer] for q in recs])
                cell[name + "1"] = gmean([q[-1][field][layer] for q in recs])
            size = sizes.get(layer)
            cell.update({f"rms{i}": cell[f"grad{i}"] / math.sqrt(size) if size and cell[f"grad{i}"] is not None
                         else None for i in (0, 1)})
            out[regime][layer] = cell
    return out


REGIMES = {"backprop": "backprop", "kd": "KD", "stage1": "FitNets stage 1 (hints)", "stage2": "FitNets stage 2 (KD)"}


def _gradients(view):
    """Per regime and layer: the gradient norm, the update norm and the output scale at the
    first step and at the last recorded one (``trace_summary``)."""
    lines = ["| regime | layer | gradient norm, first step | last step | per element, first step | last step | "
             "update norm, first step | last step | output scale, first step | last step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.2g}"
    for regime, layers in view["trace"].items():
        for layer, c in layers.items():
            cells = [fmt(c[k]) for k in ("grad0", "grad1", "rms0", "rms1", "update0", "update1", "act0", "act1")]
            lines.append(f"| {REGIMES[regime]} | {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _speed(view):
    info = view["info"]
    lines = ["| network | batch | measurement | tinyfit | PyTorch | tinyfit / PyTorch |", "|---|---|---|---|---|---|"]
    for r in info["rows"]:
        torch = f"{r['torch_ms']:.1f} ms" if "torch_ms" in r else "not measured"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        lines.append(f"| {r['net']} | {r['batch']} | {r['what']} | {r['tinyfit_ms']:.1f} ms | {torch} | {ratio} |")
    return "\n".join(lines)


def _ms(r, k):
    return f"{r[k + '_ms']:.2f} ms" if k + "_ms" in r else "not measured"


def _ratio(r, a, b):
    return f"{r[a + '_ms'] / r[b + '_ms']:.2f}" if a + "_ms" in r and b + "_ms" in r else ""


def _predict(view):
    """Inference per call (benchmarks/bench_predict.py): the Predictor beside the others."""
    lines = ["| network | batch | threads | Predictor | autograd forward | onnxruntime | PyTorch | Predictor / "
             "onnxruntime | Predictor / PyTorch | first call | memory kept |", "|---" * 11 + "|"]
    for r in view["info"]["rows"]:
        lines.append(f"| {r['net']} | {r['batch']} | {r['threads']} | {_ms(r, 'predictor')} | {_ms(r, 'autograd')} | "
                     f"{_ms(r, 'onnxruntime')} | {_ms(r, 'torch')} | {_ratio(r, 'predictor', 'onnxruntime')} | "
                     f"{_ratio(r, 'predictor', 'torch')} | {r['first_call_ms']:.0f} ms | {r['kept_mb']:.1f} MB |")
    return "\n".join(lines)


def _predict_layers(view):
    """Where a Predictor call spends its time: each layer (ms), and the Python calls of one call."""
    rows = [r for r in view["info"]["rows"] if "layer_ms" in r]
    heads = [f"{r['net']}, batch {r['batch']}, {r['threads']} thread{'s' * (r['threads'] > 1)}" for r in rows]
    lines = ["| layer | " + " | ".join(heads) + " |", "|---|" + "---|" * len(rows)]
    names = list(dict.fromkeys(n for r in rows for n, _ in r["layer_ms"]))
    for n in names:
        lines.append(f"| {n} | " + " | ".join(next((f"{ms:.3f} ms" for m, ms in r["layer_ms"] if m == n), "")
                                             for r in rows) + " |")
    lines.append("| Python function calls per call | " + " | ".join(str(r["python_calls"]) for r in rows) + " |")
    return "\n".join(lines)


def _left_chance_when(runs):
    """'k of n', and for the k runs that left chance, the epochs at which their validation
    error first fell below the chance line (of how many epochs the runs had)."""
    trained = [r for r in runs if r["test_error"] < CHANCE_LINE]
    text = f"{len(trained)} of {len(runs)}"
    first = [next((h["epoch"] for h in r["history"] if h["val"] < CHANCE_LINE), None) for r in trained]
    first = [e for e in first if e is not None]
    if first:
        span = f"{min(first)}" if min(first) == max(first) else f"{min(first)}-{max(first)}"
        text += f" (from epoch {span} of {max(len(r['history']) for r in trained)})"
    return text


def _training_sets(view):
    """Each training set of a study (its ``training_sets``): size, class counts, balance, mean
    pixel, and how many of each method's runs on it left chance, and from which epoch."""
    info = view["info"]
    methods = list(dict.fromkeys(r["method"] for r in info["results"]))
    lines = ["| training set | digits | class counts (0 to 9) | largest / smallest class | distance from uniform | "
             "mean pixel | " + " | ".join(f"{METHODS[m].label} left chance" for m in methods) + " |",
             "|---" * (6 + len(methods)) + "|"]
    for key, t in info["training_sets"].items():
        left = []
        for m in methods:
            runs = [r for r in info["results"] if r.get("data") == key and r["method"] == m]
            left.append(_left_chance_when(runs) if runs else "")
        lines.append(f"| {key} | {t['digits']} | {' '.join(map(str, t['class_counts']))} | "
                     f"{t['largest_to_smallest']:.2f} | {t['distance_from_uniform']:.3f} | {t['mean_pixel']:.4f} | "
                     + " | ".join(left) + " |")
    return "\n".join(lines)


def _mutation(view):
    """Mutation scores per module (benchmarks/mutation_score.py) and the survivors left."""
    lines = ["| module | mutants | killed (or timed out) | survived | of which equivalent | no test reaches it | "
             "score | score of the non-equivalent | survivors without a reason |", "|---" * 9 + "|"]
    pct = lambda x: "no mutants" if x is None else f"{100 * x:.1f}%"
    for m, r in view["info"]["modules"].items():
        c = r["counts"]
        lines.append(f"| `{m}` | {r['mutants']} | {r['killed']} | {c.get('survived', 0)} | {r['equivalent']} | "
                     f"{c.get('no tests', 0)} | {pct(r['score'])} | {pct(r['score_non_equivalent'])} | "
                     f"{sum(not x['reason'] for x in r['survivors'])} |")
    tests = view["info"].get("tests", "all")
    if tests != "all":
        names = ", ".join(f"`{t}`" for t in tests)
        lines.append(f"\nTests run: {names} only (the whole suite kills at least as many).")
    return "\n".join(lines)


def _profile(view):
    prof = view["info"]["profile_ms"]
    nets = list(prof)
    ops = {}
    for net in nets:
        for op, phase, ms in prof[net]:
            ops.setdefault((op, phase), {})[net] = ms
    lines = ["| op | phase | " + " | ".join(f"{n} (ms per step)" for n in nets) + " |",
             "|---|---|" + "---|" * len(nets)]
    for (op, phase), by in sorted(ops.items(), key=lambda kv: -max(kv[1].values())):
        lines.append(f"| {op} | {phase} | " + " | ".join(f"{by[n]:.1f}" if n in by else "" for n in nets) + " |")
    lines.append("| all ops | | " + " | ".join(f"{sum(ms for *_, ms in prof[n]):.1f}" for n in nets) + " |")
    return "\n".join(lines)


def _gemm(view):
    info = view["info"]
    steps = {r["net"]: r["tinyfit_ms"] for r in info["rows"] if r["what"] == "train step"}
    lines = ["| network | forward GEMMs | weight-gradient GEMMs | input-gradient GEMMs | all GEMMs | the step | "
             "outside the GEMMs |", "|---|---|---|---|---|---|---|"]
    for net, g in info["gemm_floor_ms"].items():
        tot = sum(g.values())
        step = steps.get(net)
        lines.append(f"| {net} | {g['forward']:.1f} ms | {g['weight grad']:.1f} ms | {g['input grad']:.1f} ms | "
                     f"{tot:.1f} ms | " + (f"{step:.1f} ms | {step - tot:.1f} ms |" if step else " | |"))
    return "\n".join(lines)


def _load(view):
    """Step time per thread setting (rows) and number of busy processes (columns)."""
    rows = view["info"]["rows"]
    loads = sorted({r["load"] for r in rows})
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    cell = {(r["setting"], r["load"]): r for r in rows}
    lines = ["| threads | " + " | ".join(f"{n} busy processes" for n in loads) + " |", "|---|" + "---|" * len(loads)]
    for s in settings:
        cells = [cell.get((s, n)) for n in loads]
        lines.append(f"| {s} | " + " | ".join("" if c is None else f"{c['step_ms']:.0f} ms" + (
            f" ({c['slowdown']:.1f}x)" if "slowdown" in c else "") for c in cells) + " |")
    return "\n".join(lines)


def _compute(view):
    """Per cell and column, what its runs cost (means over seeds): training epochs (both stages),
    steps, multiplications of the forward and backward passes, and wall time."""
    by = {}
    for r in view["info"]["results"]:
        by.setdefault((r["cell"], r["column"]), []).append(r)
    lines = ["| cell | method | epochs | steps | multiplications (training) | wall time per run |",
             "|---|---|---|---|---|---|"]
    for (cell, col), rs in by.items():
        c = [r["compute"] for r in rs if "compute" in r]
        mean = {k: sum(x[k] for x in c) / len(c) for k in ("epochs", "steps", "multiplications")} if c else {}
        wall = sum(r["wall_seconds"] for r in rs) / len(rs)
        cost = f"{mean['epochs']:g} | {mean['steps']:,.0f} | {mean['multiplications']:.3g}" if c else "- | - | -"
        lines.append(f"| {cell} | {column_label(col)} | {cost} | {wall:.0f} s |")
    return "\n".join(lines)


STUDY = "python examples/fitnets_study.py"


def _commands(view):
    """The study's command per experiment, with what it runs (a code block)."""
    width = max(len(e.name) for e in view["experiments"])
    return "```\n" + "\n".join(f"{STUDY} {e.name:{width}s}  # {e.summary}" for e in view["experiments"]) + "\n```"


def _questions(view):
    lines = ["| experiment | the question it asks | student epochs (stage 1) | default seeds |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| `{e.name}` | {e.question} | {e.budget.student} ({e.budget.hints}) | {len(e.seeds)} |"
                               for e in view["experiments"]])


def _regenerate(view):
    """How to regenerate each experiment's results: its command and the copy into docs/results."""
    lines = ["| results | command | copy in |", "|---|---|---|"]
    return "\n".join(lines + [f"| `{e.name}` | `{STUDY} {e.name}{' ' + e.args if e.args else ''}` | "
                               f"`python examples/publish_results.py --add {e.name} {e.out}/{e.name}` |"
                               for e in view["experiments"]])


TABLES = {"compute": _compute, "commands": _commands, "questions": _questions, "regenerate": _regenerate,
          "family": _family, "load": _load, "profile": _profile, "gemm": _gemm, "provenance": _provenance,
          "errors": _errors, "pairs": _pairs, "pipeline": _pipeline, "grid": _grid, "positions": _positions,
          "gradients": _gradients, "speed": _speed, "predict": _predict, "predict-layers": _predict_layers,
          "training-sets": _training_sets, "mutation": _mutation}


def render_table(root, name, kind):
    """The Markdown of table ``kind`` (one of TABLES) of results ``name`` under ``root``;
    ``kind:cell`` keeps a study's one cell (spaces in its name written as '-', e.g.
    ``errors:init-code``)."""
    kind, _, cell = kind.partition(":")
    if kind not in TABLES:
        raise ValueError(f"unknown table kind {kind!r}; known: {', '.join(TABLES)}")
    if _missing(root, name):  # said on the page, so that a reader never sees an empty table
        return (f"*Not measured yet with the code as it stands: `docs/results/{name}/results.json` does not exist "
                "(docs/reproducibility.md says how to make it).*")
    view = load(root, name)
    if cell:
        keep = {c: s for c, s in view.get("summary", {}).items() if c.replace(" ", "-") == cell}
        if not keep:
            raise ValueError(f"results {name} have no cell {cell!r}; cells: "
                             + ", ".join(c.replace(" ", "-") for c in view.get("summary", {})))
        view = dict(view, summary=keep)
    return TABLES[kind](view).rstrip("\n")


def refresh(text, root, missing=None):
    """``text`` with every marked table and value rendered anew from the results under
    ``root``; the names of results not published yet are added to the list ``missing``."""
    def table(m):
        if missing is not None and _missing(root, m.group(2)):
            missing.append(m.group(2))
        return m.group(1) + render_table(root, m.group(2), m.group(3)) + "\n" + m.group(5)

    alias = aliases(text)

    def value(m):
        name = _expand(m.group(3), alias).split("/")[0]
        if missing is not None and _missing(root, name):
            missing.append(name)
        return m.group(1) + render_value(root, m.group(2), m.group(3), alias) + m.group(5)
    return VALUE.sub(value, BLOCK.sub(table, text))


def stale(text, root):
    """The marked parts of ``text`` that differ from what the results under ``root`` give:
    [(marker, published, now)]."""
    out = []
    for m in BLOCK.finditer(text):
        now = render_table(root, m.group(2), m.group(3))
        if m.group(4).rstrip("\n") != now:
            out.append((f"table {m.group(2)} {m.group(3)}", m.group(4).rstrip("\n"), now))
    alias = aliases(text)
    for m in VALUE.finditer(text):
        now = render_value(root, m.group(2), m.group(3), alias)
        if m.group(4) != now:
            out.append((f"value {m.group(2)} {m.group(3)}", m.group(4), now))
    return out


def figure(root, name):
    """Draw results ``name``'s figure anew from its results file (the study's figure of the
    experiment, or the training curves of an example run); returns its path, or None when the
    results have no figure or matplotlib is missing."""
    from . import plots
    view = load(root, name)
    info = view["info"]
    if not plots.available() or "results" not in info:
        return None
    if "summary" in view:
        return figure_of(info["experiment"], info["results"], view["summary"],
                         os.path.join(root, name, f"{name}.png"), info["split"], len(info["seeds"]),
                         info.get("smoke", False))
    rows = [r for r in info["results"] if r["method"] != "teacher"]
    return plots.curves(rows, os.path.join(root, name, "curves.png"),
                        title=f"students on {info['split']}, seed {info['seed']}")


# -- a study's summaries and figure --------------------------------------------------------

def _pct(x, digits=2):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def _chance(st):
    return (f"{st['left_chance']} of {st['n']} (95% CI {_pct(st['left_chance_low'], 0)}-"
            f"{_pct(st['left_chance_high'], 0)}%)")


SMOKE_NOTE = "SMOKE RUN (--quick): tiny data and 1-2 epochs; these numbers mean nothing and no verdict is given."


def _smoke(summary):
    return any(s.get("smoke") for s in summary.values())


def format_summary(summary, experiment=""):
    """The tables the study prints: per cell, the test error of each column (mean, 95%
    interval, every seed), how many seeds left chance, then the paired comparisons."""
    lines = [SMOKE_NOTE] if _smoke(summary) else []
    for cell, s in summary.items():
        lines.append(f"{experiment + ': ' if experiment else ''}{cell}")
        if not s.get("repeats"):
            lines.append(f"  {'':56s} {'test error':>10s} {'95% CI':>13s}  {'left chance':>11s}   per seed")
        for col, st in ({} if s.get("repeats") else s["columns"]).items():
            per = ", ".join(_pct(v) for v in st["per_seed"].values())
            ci = f"{_pct(st['low']):>6s}-{_pct(st['high']):<6s}" if st["n"] > 1 else f"{'one seed':^13s}"
            lines.append(f"  {column_label(col)[:56]:56s} {_pct(st['mean']):>9s}% {ci} {st['left_chance']:>5d} of "
                         f"{st['n']:<3d}   {per}")
        if s["chosen"]:
            method = next(iter(s["chosen"]))  # the chosen record opens with {method: its chosen column}
            lines.append(f"  {method}: {s['chosen'][method]} chosen by {s['chosen']['by']}")
        for p in s["pairs"]:
            if p["n"] < 2:   # no interval and no test on one seed
                lines.append(f"  {p['a']} - {p['b']}: {100 * p['mean_diff']:+.2f} points on the one seed "
                             "(no interval, no verdict)")
                continue
            lines.append(f"  {p['a']} - {p['b']}: {100 * p['mean_diff']:+.2f} points, 95% CI "
                         f"[{100 * p['low']:+.2f}, {100 * p['high']:+.2f}] (paired over {p['n']} seeds; "
                         f"{p['a']} lower in {p['a_wins']}, {p['b']} lower in {p['b_wins']}; {_test(p)}): "
                         f"{p['verdict']}")
    family = _family_size(summary)
    if family:
        lines.append(f"verdicts: Holm-corrected over the {family} tests of this experiment "
                     f"(family-wise error {ALPHA:.0%})")
    return "\n".join(lines)


def _family_size(summary):
    return max((p.get("family", 0) for s in summary.values() for p in s["pairs"]), default=0)


def _test(p):
    what = (f"Fisher exact on left chance, {p['a_left_chance']} vs {p['b_left_chance']} of {p['n']}"
            if p["test"] == "fisher" else "paired t")
    return f"{what}, p {p['p']:.2g}, Holm {p['p_holm']:.2g}"


def errors_table(summary):
    """Markdown: per cell and column the test error (mean, 95% t interval, every seed) and how
    many seeds left chance (exact 95% interval; the mean error of those runs)."""
    lines = [f"**{SMOKE_NOTE}**", ""] if _smoke(summary) else []
    lines += ["| cell | method | mean test error | 95% CI | left chance (95% CI) | error of those | per seed |",
              "|---|---|---|---|---|---|---|"]
    for cell, s in summary.items():
        for col, st in ({} if s.get("repeats") else s["columns"]).items():
            per = ", ".join(_pct(v) for v in st["per_seed"].values())
            trained = "-" if st["trained_mean"] is None else _pct(st["trained_mean"]) + "%"
            ci = f"{_pct(st['low'])}-{_pct(st['high'])}" if st["n"] > 1 else "one seed"
            lines.append(f"| {cell} | {column_label(col)} | {_pct(st['mean'])}% | {ci} | {_chance(st)} | {trained} | "
                         f"{per} |")
    return "\n".join(lines)


def pairs_table(summary):
    """Markdown: the paired comparisons with their 95% intervals and verdicts ('' when none)."""
    pairs = [(cell, p) for cell, s in summary.items() for p in s["pairs"]]
    if not pairs:
        return ""
    lines = ["| cell | pair (a - b) | mean difference (points) | 95% CI | lower error in | test | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for cell, p in pairs:
        if p["n"] < 2:
            diff = f"{100 * p['mean_diff']:+.2f} | one seed | - | -"
        elif p["test"] == "fisher":  # errors of stuck and trained runs: the counts are compared
            diff = f"left chance: a {p['a_left_chance']}, b {p['b_left_chance']} of {p['n']} | - | - | Fisher exact"
        else:
            diff = (f"{100 * p['mean_diff']:+.2f} | [{100 * p['low']:+.2f}, {100 * p['high']:+.2f}] | "
                    f"a {p['a_wins']}, b {p['b_wins']} of {p['n']} | paired t")
        ps = f"{p['p']:.2g} ({p['p_holm']:.2g})" if p["n"] > 1 else "-"
        lines.append(f"| {cell} | {column_label(p['a'])} - {column_label(p['b'])} | {diff} | {ps} | {p['verdict']} |")
    family = _family_size(summary)
    return "\n".join(lines + ["", f"{family} tests in this experiment, one family: a verdict needs a Holm-adjusted "
                                   f"p-value below {ALPHA:g}." if family else "One seed: no tests, no verdicts."])


def format_markdown(summary):
    """The summary as Markdown: ``errors_table``, then ``pairs_table``."""
    pairs = pairs_table(summary)
    return errors_table(summary) + ("\n\n" + pairs if pairs else "")


CELL_LABELS = {"init code": "students from U(-0.005, 0.005) (official code)",
               "init glorot": "students from Glorot init"}


def _depth_figure(rows, summary, path, title):
    from . import plots
    cells = sorted((c for c in summary if not summary[c].get("repeats")), key=lambda c: int(c.split()[1]))
    depths = [int(c.split()[1]) for c in cells]
    by_method = {m: [[100 * v for v in summary[c]["columns"][m]["per_seed"].values()] for c in cells]
                 for m in PAPER_METHODS if all(m in summary[c]["columns"] for c in cells)}
    return plots.errors_by_depth(depths, by_method, path, title + " (mean, 95% CI, dots: seeds)")


def _bars_figure(rows, summary, path, title):
    from . import plots
    groups = []
    for cell, s in summary.items():
        # a hint-weight grid is shown by the weight chosen on validation
        cols = [c for c in s["columns"] if not (s["chosen"] and parse_column(c).grid_member)]
        groups.append((CELL_LABELS.get(cell, cell), [(column_label(c), c, [100 * v for v in
                                                                          s["columns"][c]["per_seed"].values()])
                                                     for c in cols]))
    return plots.grouped_errors(groups, path, title + " (bars: mean, whiskers: 95% CI, dots: seeds)")


def _curves_figure(rows, summary, path, title):
    from . import plots
    return plots.curves(rows, path, title=title)


def _layer_sizes():
    """{layer: weight count} of the MNIST student's layers and of its h3 -> h1 regressor (what a
    gradient trace's norms are taken over)."""
    from .fitnets import make_regressor
    from .models import STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher
    student = mnist_student()
    sizes = {n: sum(int(p.data.size) for p in student[n].parameters()) for n in student.layer_names}
    reg = make_regressor(student, STUDENT_GUIDED, mnist_teacher(), TEACHER_HINT, student.input_shape, pieces=2)
    return dict(sizes, regressor=sum(int(p.data.size) for p in reg.parameters()))


def _gradients_figure(rows, summary, path, title):
    from . import plots
    from .pipeline import RMS_FLOOR
    floors = {(r.get("settings") or {}).get("rms_floor", RMS_FLOOR) for r in rows}
    return plots.gradient_flow(rows, path, title=title, sizes=_layer_sizes(),
                               floor=floors.pop() if len(floors) == 1 else None)


FIGURES = {"bars": _bars_figure, "depth": _depth_figure, "curves": _curves_figure, "gradients": _gradients_figure}


def figure_of(experiment, rows, summary, path, split, n_seeds, smoke=False):
    """The experiment's figure (matplotlib), of its kind (``Experiment.figure``): grouped bars,
    error against depth, per-epoch curves or per-layer gradient flow."""
    kind = EXPERIMENTS[experiment].figure
    if kind not in FIGURES:
        raise ValueError(f"experiment {experiment!r} asks for figure kind {kind!r}; known: {', '.join(FIGURES)}")
    if any(r.get("data") for r in rows):   # runs on training sets of their own: the split's held-out part
        split = "each panel's training set, " + split.partition(", ")[2]
    title = f"{experiment}: {split}, {n_seeds} seeds" + (" (SMOKE RUN: numbers mean nothing)" if smoke else "")
    return FIGURES[kind](rows, summary, path, title)


def method_figure(path, pieces="code", pooling="ceil"):
    """The method's figure (``plots.method_diagram``), drawn from the paper's MNIST teacher and
    student as the library builds them, so that it follows the code."""
    from . import plots
    from .fitnets import layer_shape, make_regressor
    from .models import STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher
    teacher, student = mnist_teacher(pieces, pooling), mnist_student(pieces, pooling)

    def layers(model):
        out = []
        for n in model.layer_names:
            weights = sum(int(p.data.size) for p in model[n].parameters())
            if weights:
                shape = "x".join(map(str, layer_shape(model, n, model.input_shape)))
                kind = "maxout conv" if hasattr(model[n], "pieces") else "softmax"
                out.append((n, f"{kind}, {shape}\n{weights:,} weights"))
        return out
    reg = make_regressor(student, STUDENT_GUIDED, teacher, TEACHER_HINT, student.input_shape,
                         pieces=teacher[TEACHER_HINT].pieces)
    desc = (f"{reg.kernel}x{reg.kernel} maxout conv\n{reg.guided_shape[2]} -> {reg.hint_shape[2]} channels\n"
            f"{sum(int(p.data.size) for p in reg.parameters()):,} weights")
    return plots.method_diagram(layers(teacher), layers(student), TEACHER_HINT, STUDENT_GUIDED, desc, path)


def write_study(exp_dir, info, figure=True):
    """Write a study's ``summary.txt``, ``summary.md`` and (with matplotlib and ``figure``)
    ``<experiment>.png`` into ``exp_dir``; returns {"figure": its path} or {}."""
    from . import plots
    experiment, summary = info["experiment"], info["summary"]
    atomic_write(os.path.join(exp_dir, "summary.txt"), format_summary(summary, experiment) + "\n")
    atomic_write(os.path.join(exp_dir, "summary.md"), format_markdown(summary) + "\n")
    if not (figure and plots.available()):
        return {}
    return {"figure": figure_of(experiment, info["results"], summary, os.path.join(exp_dir, f"{experiment}.png"),
                                info["split"], len(info["seeds"]), info["smoke"])}
