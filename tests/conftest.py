import os

import pytest
from hypothesis import HealthCheck, settings

from tinyfit import backend

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
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
