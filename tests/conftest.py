"""Test-session settings.

``make test`` runs pytest with two xdist workers (one per core); each worker then uses one
torch thread, which is also the fastest setting for the small networks the tests fit.
"""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
