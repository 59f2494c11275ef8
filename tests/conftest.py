import os

import pytest
from hypothesis import HealthCheck, settings

from fake_device import fake_device  # noqa: F401 (a fixture for every test file)
from tinyfit import backend

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# mutation testing (benchmarks/mutation_score.py): the same draws for every mutant, so that a
# mutant is killed by what it changes, not by which examples a run happened to draw
settings.register_profile("mutation", max_examples=25, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DEVICES = ["cpu", "cuda"]


@pytest.fixture(params=DEVICES, scope="session")
def device(request):
    """Every op test runs on NumPy, and on CuPy when a GPU is present."""
    if request.param == "cuda" and not backend.cupy_available():
        pytest.skip("CuPy with a CUDA device is not available")
    return request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; excluded from the default run (-m slow runs them)")


def pytest_collection_modifyitems(config, items):
    # TINYFIT_TEST_FILES=test_stats.py,test_summary.py: only those files' tests (a mutation run
    # on chosen tests, benchmarks/mutation_score.py --tests); unset, every test
    only = os.environ.get("TINYFIT_TEST_FILES")
    if only:
        keep = set(only.split(","))   # checked by mutation_score.py: a run on node ids collects fewer files
        items[:] = [i for i in items if os.path.basename(str(i.fspath)) in keep]
