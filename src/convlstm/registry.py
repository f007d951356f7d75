"""The registry that turns ``{"class_name": ..., "config": ...}`` back into layers and models.

A leaf: it imports nothing from this package. Every layer class (and ``Sequential``) registers
itself where it is defined, with the :func:`register` decorator::

    @register
    class Dense(KernelLayer): ...

Only registered classes can be rebuilt, so reading a config never runs other code. Importing
``convlstm`` imports every module that defines a layer, so the registry is complete by then.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
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


def config_dict(owner: str, config: object) -> dict[str, Any]:
    """``config`` as a new dict, if it is a mapping with string keys."""
    if not isinstance(config, Mapping) or not all(isinstance(key, str) for key in config):
        raise TypeError(f"{owner}: expected config to be a dict with string keys; got "
                        f"{type(config).__name__} {config!r:.80}.")
    return dict(config)


def config_entry(owner: str, config: Mapping[str, Any], key: str) -> Any:
    """``config[key]``, or a ``ValueError`` naming the missing key."""
    if key not in config:
        raise ValueError(f"{owner}: the config has no {key!r}; got keys {sorted(config)}.")
    return config[key]


def config_arguments(cls: type, config: object, aliases: Mapping[str, str] | None = None,
                     ignored: tuple[str, ...] = ()) -> dict[str, Any]:
    """``config`` checked against ``cls``'s constructor: a dict holding every required argument
    and nothing the constructor does not take (``aliases``: other names it takes, each mapped to
    the parameter it stands for; ``ignored``: keys dropped first, such as a loss's "name")."""
    owner = f"{cls.__name__}.from_config"
    config = {key: value for key, value in config_dict(owner, config).items()
              if key not in ignored}
    parameters = inspect.signature(cls).parameters
    named, passed_on = _keywords(parameters), parameters
    for base in cls.__mro__[1:]:  # **options passed on to a base class's __init__
        if not any(item.kind is item.VAR_KEYWORD for item in passed_on.values()):
            break
        if "__init__" in vars(base):
            passed_on = inspect.signature(base.__init__).parameters
            named += [name for name in _keywords(passed_on) if name not in named]
    accepted = {*named, *(alias for alias, name in (aliases or {}).items() if name in named)}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(f"{owner}: unknown config keys {unknown}; expected some of {named}.")
    missing = [name for name in _keywords(parameters)
               if parameters[name].default is inspect.Parameter.empty and name not in config]
    if missing:
        raise ValueError(f"{owner}: the config lacks the required {missing}.")
    return config


def _keywords(parameters: Mapping[str, inspect.Parameter]) -> list[str]:
    return [name for name, item in parameters.items() if name != "self"
            and item.kind in (item.POSITIONAL_OR_KEYWORD, item.KEYWORD_ONLY)]


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
    if not isinstance(spec["class_name"], str):
        raise TypeError(f"deserialize: expected class_name to be a str; got "
                        f"{spec['class_name']!r:.80}.")
    return layer_class(spec["class_name"], "deserialize").from_config(spec["config"])
