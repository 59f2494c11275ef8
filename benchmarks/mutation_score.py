"""How many small changes of the code the tests catch: mutmut over chosen modules.

    pip install -e ".[test,mutation]"
    python benchmarks/mutation_score.py tinyfit/stats.py tinyfit/summary.py --json mutation.json
    python benchmarks/mutation_score.py tinyfit/stats.py --tests test_stats.py --json mutation.json
    python examples/publish_results.py --add mutation mutation.json
    python benchmarks/mutation_score.py --reasons mutation.json   # after editing the reasons

mutmut (configured in pyproject.toml's [tool.mutmut]) copies the package into ``mutants/``,
runs the whole suite once to learn which tests reach which function, then changes one
operator, constant or name at a time in the chosen modules and runs the tests that reach it:
a change that no test fails on "survived". ``--tests`` runs only some test files (a
lower bound of the suite's score, in minutes instead of hours; the results file says which).
Hypothesis draws the same examples for every mutant (the "mutation" profile). It runs for
hours over the big modules on 2 cores: in the background, never beside a training run (both
would be slowed, and the timings of neither would mean anything); ``mutmut run`` again continues where it stopped.

The results file holds, per module, the mutants killed, survived, timed out and not reached
by any test, the score (killed and timed out over all the others), and every survivor with its
diff and, where ``benchmarks/mutation_survivors.json`` gives one, the reason it is left: an
equivalent change (a reason starting "equivalent:": no test can tell it from the code), one
reached only on a GPU, or one not worth a test. Survivors without a reason are work to do.
Beside the score over all mutants, the score over the mutants that are not equivalent (the
textbook mutation score: killed / (mutants - equivalent)).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)   # tinyfit from this checkout
REASONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mutation_survivors.json")
KILLED = ("killed", "timeout")
EQUIVALENT = "equivalent:"   # the reason of a survivor no test can kill


def module_name(path):
    """'tinyfit/stats.py' -> 'tinyfit.stats'."""
    if not path.endswith(".py") or not os.path.exists(os.path.join(ROOT, path)):
        raise SystemExit(f"{path!r} is not a Python file of this checkout (expected e.g. tinyfit/stats.py)")
    return path[:-3].replace(os.sep, ".").replace("/", ".")


def mutmut(*args):
    out = subprocess.run(["mutmut", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode and args[0] != "run":
        raise SystemExit(f"mutmut {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def statuses(modules):
    """{module: {mutant name: status}} from ``mutmut results --all true``."""
    by = {m: {} for m in modules}
    for line in mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        for m in modules:
            if name.startswith(m + "."):
                by[m][name] = status
    return by


def score(found, reasons):
    counts = {}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    tested = sum(n for s, n in counts.items() if s != "skipped")
    killed = sum(counts.get(s, 0) for s in KILLED)
    survivors = [{"mutant": n, "status": s, "diff": mutmut("show", n).split("\n", 1)[-1][-1500:],
                  "reason": reasons.get(n, "")} for n, s in sorted(found.items()) if s not in KILLED + ("skipped",)]
    return tally({"counts": counts, "mutants": tested, "killed": killed,
                  "score": killed / tested if tested else None, "survivors": survivors})


def tally(r):
    """``r`` (one module's result) with its equivalent survivors counted and the score over
    the other mutants."""
    r["equivalent"] = sum(x["reason"].startswith(EQUIVALENT) for x in r["survivors"])
    rest = r["mutants"] - r["equivalent"]
    r["score_non_equivalent"] = r["killed"] / rest if rest else None
    return r


def load_reasons():
    """{mutant name: why it is left} from REASONS ({} without the file)."""
    return json.load(open(REASONS)) if os.path.exists(REASONS) else {}


def attach_reasons(path):
    """The results file at ``path`` with each survivor's reason taken from REASONS again (the
    run itself, its provenance and counts unchanged)."""
    from tinyfit.files import atomic_write
    reasons = load_reasons()
    result = json.load(open(path))
    for r in result["modules"].values():
        for s in r["survivors"]:
            s["reason"] = reasons.get(s["mutant"], "")
        tally(r)
    atomic_write(path, json.dumps(result, indent=1).encode())
    print(f"reasons attached: {path}")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help="the modules to mutate, as paths (tinyfit/stats.py)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--no-run", action="store_true", help="only collect what earlier runs found")
    ap.add_argument("--reasons", metavar="RESULTS", help="attach the reasons of mutation_survivors.json to the "
                                                         "survivors of a results file written earlier (no run)")
    ap.add_argument("--tests", help="run only these test files (test_stats.py,test_summary.py): a shorter run whose "
                                    "score is a lower bound of the whole suite's; default: every test")
    a = ap.parse_args(argv)
    if a.reasons:
        return attach_reasons(a.reasons)
    if not a.modules:
        ap.error("give the modules to mutate, as paths (tinyfit/stats.py ...), or --reasons RESULTS")
    modules = [module_name(p) for p in a.modules]
    tests = sorted(set(a.tests.split(","))) if a.tests else None
    for t in tests or ():
        if not os.path.exists(os.path.join(ROOT, "tests", t)):
            raise SystemExit(f"--tests: no file tests/{t}; expected names of files in tests/ joined by commas, "
                             "e.g. test_stats.py,test_summary.py")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from results_file import save
    t0 = time.perf_counter()
    if not a.no_run:
        # the same hypothesis draws for every mutant (tests/conftest.py's "mutation" profile)
        # and one thread everywhere: no thread pool to copy into a forked worker
        from tinyfit.backend import THREAD_VARIABLES
        env = dict(os.environ, HYPOTHESIS_PROFILE="mutation", **dict.fromkeys(THREAD_VARIABLES, "1"))
        if tests:
            env["TINYFIT_TEST_FILES"] = ",".join(tests)
        out = subprocess.run(["mutmut", "run", *(m + ".*" for m in modules)], cwd=ROOT, env=env)
        if out.returncode not in (0, 1):
            raise SystemExit(f"mutmut run stopped with exit status {out.returncode}")
    reasons = load_reasons()
    scores = {m: score(found, reasons) for m, found in statuses(modules).items()}
    for m, r in scores.items():
        s = "no mutants" if r["score"] is None else (f"{100 * r['score']:.1f}% of {r['mutants']} killed, "
                                                     f"{100 * r['score_non_equivalent']:.1f}% of the non-equivalent")
        print(f"{m}: {s}; {len(r['survivors'])} survivors ({r['equivalent']} equivalent), "
              f"{sum(not x['reason'] for x in r['survivors'])} without a reason")
    return save(a.json, "mutation_score", t0, modules=scores, tests=tests or "all")


if __name__ == "__main__":
    main()
