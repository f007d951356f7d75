"""Models trained with this library and shipped inside it.

``moving-mnist``: the :func:`convlstm.forecasting.forecaster` trained on Moving MNIST from real
digits; its ``metadata`` holds the command that trained it and how long that took.
"""

from __future__ import annotations

from importlib import resources

from convlstm import _validation as check
from convlstm import saving
from convlstm.models import Sequential

FILES = {"moving-mnist": "moving_mnist.npz"}


def pretrained(name: str = "moving-mnist") -> Sequential:
    """Load a shipped model by name (one of ``FILES``)."""
    name = check.choice("pretrained", "name", name, tuple(FILES))
    with resources.as_file(resources.files(__name__) / FILES[name]) as path:
        return saving.load(path)
