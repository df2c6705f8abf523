"""Test-session settings.

``make test`` runs pytest with two xdist workers (one per core); each worker then uses one
torch thread, which is also the fastest setting for the small networks the tests fit.
"""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def one_thread():
    """One torch thread for the test (restored after it): what small fits are fastest with,
    also outside xdist workers."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
