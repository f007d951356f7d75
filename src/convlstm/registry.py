"""The registry that turns ``{"class_name": ..., "config": ...}`` back into layers and models.

A leaf: it imports nothing from this package. Every layer class (and ``Sequential``) registers
itself where it is defined, with the :func:`register` decorator::

    @register
    class Dense(KernelLayer): ...

Only registered classes can be rebuilt, so reading a config never runs other code. Importing
``convlstm`` imports every module that defines a layer, so the registry is complete by then.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T", bound=type)

LAYER_CLASSES: dict[str, type] = {}


def register(cls: T) -> T:
    """Class decorator: make ``cls`` (de)serialisable under its ``__name__``; returns it."""
    name = cls.__name__
    known = LAYER_CLASSES.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise ValueError(
            f"register: the layer class name {name!r} is already taken by "
            f"{known.__module__}.{known.__qualname__}; got {cls.__module__}.{cls.__qualname__}."
        )
    LAYER_CLASSES[name] = cls
    return cls


def layer_class(name: str, owner: str = "layer_class") -> type:
    """The registered class called ``name`` (``owner`` starts the error message)."""
    cls = LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(
            f"{owner}: unknown layer class {name!r}; expected one of {sorted(LAYER_CLASSES)}."
        )
    return cls


def serialize(layer: Any) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a layer of a registered class."""
    name = type(layer).__name__
    if LAYER_CLASSES.get(name) is not type(layer):
        raise TypeError(
            f"serialize: {name} is not a registered layer class; expected one of "
            f"{sorted(LAYER_CLASSES)}."
        )
    return {"class_name": name, "config": layer.get_config()}


def deserialize(spec: object) -> Any:
    """Rebuild a layer from :func:`serialize` output."""
    if not isinstance(spec, dict) or set(spec) != {"class_name", "config"}:
        raise TypeError(
            f"deserialize: expected a dict with keys 'class_name' and 'config'; got {spec!r:.80}."
        )
    return layer_class(spec["class_name"], "deserialize").from_config(spec["config"])
