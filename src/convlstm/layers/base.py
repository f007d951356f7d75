"""What every layer shares: calling, configuration round trips and a readable repr."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Layer(ABC):
    """Base class: ``layer(x)`` is ``layer.forward(x)``; configs rebuild an equal layer."""

    @abstractmethod
    def forward(self, x: np.ndarray, **kwargs: Any) -> Any:
        """Compute the layer's output for ``x``."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""

    def __call__(self, x: np.ndarray, **kwargs: Any) -> Any:
        return self.forward(x, **kwargs)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Build a layer from ``get_config()`` output (weights are not part of the config)."""
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
