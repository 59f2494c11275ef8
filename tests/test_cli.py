"""The command line in the package: ``tinyfit`` (console script) and ``python -m tinyfit``, from a
wheel installed into a fresh virtual environment, not from this checkout."""
import os
import subprocess
import sys
import venv

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_python_m_tinyfit_lists_its_commands_and_refuses_others():
    r = subprocess.run([sys.executable, "-m", "tinyfit"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "run " in r.stdout and "study " in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinyfit", "train"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "tinyfit: unknown command 'train'; choose one of run, study"]


def test_a_wheel_in_a_fresh_environment_runs_both_commands(tmp_path):
    pytest.importorskip("setuptools")
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), ROOT], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=True)   # NumPy from here: no download
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = str(bindir / "python")
    wheel, = [str(p) for p in wheels.glob("tinyfit-*.whl")]
    inst = subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", wheel], capture_output=True, text=True,
                          timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp_path / "elsewhere"   # not the checkout: the installed package must stand alone
    work.mkdir()
    where = subprocess.run([py, "-c", "import tinyfit; print(tinyfit.__file__)"], cwd=work, capture_output=True,
                           text=True, timeout=60)
    assert str(env_dir) in where.stdout, where.stdout
    env = dict(os.environ, TINYFIT_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = subprocess.run([str(bindir / "tinyfit"), "run", "--quick", "--no-progress", "--out", "r"], cwd=work,
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "command: tinyfit run --quick --no-progress --out r" in run.stdout and (work / "r" / "results.json").exists()
    study = subprocess.run([py, "-m", "tinyfit", "study", "init", "--quick", "--seeds", "0", "--no-progress", "--out",
                            "s"], cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert study.returncode == 0, study.stderr[-2000:]
    assert (work / "s" / "init" / "summary.md").exists() and "SMOKE RUN" in study.stdout
