import sys
from pathlib import Path

import pytest

# reference.py is a test helper, importable as a plain module from the tests.
sys.path.insert(0, str(Path(__file__).parent))

from convlstm.functional import threads


@pytest.fixture
def pinned_blas(monkeypatch):
    """As inside threads.recurrence() with BLAS pinned to one thread (threadpoolctl is
    optional): products are split over our threads, and sample groups spread over them."""
    monkeypatch.setattr(threads, "_single_blas", [1])
