"""Optimizers in order of increasing complexity: SGD, RMSprop, Adam, AdamW (Keras 3 updates).

Every optimizer updates ``params`` in place from ``grads`` (dicts with identical keys, such as
``"0/kernel"``) and keeps its state per key, created on first use with the param's shape and
dtype. One ``apply`` call, as in Keras:

1. clip the gradients (``clipnorm`` per array, ``global_clipnorm`` over all, or ``clipvalue``);
2. decay the weights, ``w *= 1 - weight_decay * lr``, when ``weight_decay`` is set;
3. run the optimizer's own update with the learning rate for step ``iterations``;
4. add one to ``iterations``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.registry import config_arguments, config_entry

Schedule = Callable[[int], float]


def _positive(owner: str, name: str, value: object) -> float:
    return check.finite_number(owner, name, value, "a positive float", lambda v: v > 0)


def _optional(
    owner: str, name: str, value: object, what: str, valid: Callable[[float], bool]
) -> float | None:
    if value is None:
        return None
    return check.finite_number(owner, name, value, what, valid)


class ExponentialDecay:
    """Learning rate ``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: steps per factor of ``decay_rate``.
        decay_rate: the factor.
        staircase: whether ``step / decay_steps`` is rounded down, so the rate drops in steps.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        owner = "ExponentialDecay"
        self.initial_learning_rate = _positive(
            owner, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = check.positive_int(owner, "decay_steps", decay_steps)
        self.decay_rate = _positive(owner, "decay_rate", decay_rate)
        self.staircase = check.boolean(owner, "staircase", staircase)

    def __call__(self, step: int) -> float:
        """The learning rate after ``step`` updates."""
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"ExponentialDecay({arguments})"


SCHEDULES: dict[str, type[ExponentialDecay]] = {"ExponentialDecay": ExponentialDecay}


class Optimizer(ABC):
    """Base class: clipping, weight decay, the learning rate schedule, state and configs.

    Args:
        learning_rate: a positive float, or a callable ``schedule(step) -> float`` called with
            the number of updates applied so far.
        weight_decay: if set, ``w *= 1 - weight_decay * lr`` before each update.
        clipnorm: if set, each gradient is scaled so that its L2 norm is at most this.
        global_clipnorm: if set, all gradients are scaled so that their joint L2 norm is at
            most this.
        clipvalue: if set, each gradient element is clipped to ``[-clipvalue, clipvalue]``.
    """

    def __init__(
        self,
        learning_rate: float | Schedule,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        owner = type(self).__name__
        if callable(learning_rate):
            self.learning_rate = learning_rate
        else:
            what = "a positive float or a callable schedule(step)"
            self.learning_rate = check.finite_number(
                owner, "learning_rate", learning_rate, what, lambda v: v > 0
            )
        self.weight_decay = _optional(
            owner, "weight_decay", weight_decay, "None or a float >= 0", lambda v: v >= 0
        )
        positive = ("None or a positive float", lambda v: v > 0)
        self.clipnorm = _optional(owner, "clipnorm", clipnorm, *positive)
        self.global_clipnorm = _optional(owner, "global_clipnorm", global_clipnorm, *positive)
        self.clipvalue = _optional(owner, "clipvalue", clipvalue, *positive)
        clips = {"clipnorm": clipnorm, "global_clipnorm": global_clipnorm, "clipvalue": clipvalue}
        if sum(value is not None for value in clips.values()) > 1:
            given = ", ".join(f"{name}={value!r}" for name, value in clips.items())
            raise ValueError(
                f"{owner}: expected at most one of clipnorm, global_clipnorm and clipvalue; "
                f"got {given}."
            )
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def current_learning_rate(self) -> float:
        """The learning rate of the next update (the schedule's value at ``iterations``)."""
        if callable(self.learning_rate):
            return check.finite_number(
                f"{type(self).__name__}.apply",
                f"the learning_rate schedule's value at step {self.iterations}",
                self.learning_rate(self.iterations), "a positive finite float", lambda v: v > 0,
            )
        return self.learning_rate

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The update count and every slot (e.g. Adam's moments) as flat named arrays, for a
        file: ``{"iterations": ..., "<weight>::<slot>": ...}``."""
        arrays = {f"{key}::{slot}": value for key, slots in self.state.items()
                  for slot, value in slots.items()}
        return {"iterations": np.array(self.iterations), **arrays}

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray],
                          params: Mapping[str, np.ndarray] | None = None,
                          where: str | None = None) -> None:
        """Continue from :meth:`state_arrays` output (copies are taken).

        Args:
            arrays: ``iterations`` (an int >= 0) and ``"<weight>::<slot>"`` float arrays.
            params: the weights these slots belong to, by the same names: each slot must name
                one of them and have its shape.
            where: starts the error messages (default ``"<Class>.load_state_arrays"``).

        Raises:
            ValueError: ``arrays`` is not such a state (of these ``params``); nothing changes.
        """
        where = where or f"{type(self).__name__}.load_state_arrays"
        iterations = np.asarray(arrays.get("iterations")) if "iterations" in arrays else None
        if iterations is None or iterations.shape != () or iterations.dtype.kind not in "iu" \
                or iterations < 0:
            raise ValueError(f"{where}: expected iterations, an int >= 0; got "
                             f"{arrays.get('iterations')!r:.80}.")
        for name, value in arrays.items():
            value = np.asarray(value)
            key = name.split("::", 1)[0]
            if name != "iterations" and ("::" not in name or value.dtype.kind != "f" or (
                    params is not None and (key not in params
                                            or value.shape != params[key].shape))):
                expected = "float slots named '<weight>::<slot>'" + (
                    f" for the weights {_shapes(params)}" if params is not None else "")
                raise ValueError(f"{where}: expected {expected}; got {name!r}: "
                                 f"{value.dtype} {value.shape}.")
        self.iterations = int(iterations)
        for name, value in arrays.items():
            if "::" in name:
                key, slot = name.split("::", 1)
                self.state.setdefault(key, {})[slot] = np.array(value)

    def apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array in ``params`` in place; ``grads`` is left unchanged.

        Args:
            params: float32 or float64 arrays by unique name.
            grads: an array of the same shape per name in ``params``.
        """
        grads = self._clipped(self._checked(params, grads))
        lr = self.current_learning_rate
        for key, param in params.items():
            if self.weight_decay is not None:
                param *= 1 - self.weight_decay * lr
            self._update(key, param, grads[key], lr)
        self.iterations += 1

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; a schedule with ``get_config`` is written as Keras does."""
        learning_rate = self.learning_rate
        if isinstance(learning_rate, ExponentialDecay):
            learning_rate = {
                "class_name": "ExponentialDecay",
                "config": learning_rate.get_config(),
            }
        return {
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Build a fresh optimizer (no state, ``iterations == 0``) from ``get_config()`` output."""
        owner = f"{cls.__name__}.from_config"
        config = config_arguments(cls, config)
        learning_rate = config.get("learning_rate")
        if isinstance(learning_rate, Mapping):
            name = learning_rate.get("class_name")
            schedule = SCHEDULES.get(name) if isinstance(name, str) else None
            if schedule is None:
                raise ValueError(
                    f"{owner}: expected a learning_rate schedule of class "
                    f"{', '.join(SCHEDULES)}; got {name!r:.80}."
                )
            config["learning_rate"] = schedule(
                **config_arguments(schedule, config_entry(owner, learning_rate, "config")))
        return cls(**config)

    def __repr__(self) -> str:
        config = self.get_config()
        config["learning_rate"] = self.learning_rate
        arguments = ", ".join(f"{key}={value!r}" for key, value in config.items())
        return f"{type(self).__name__}({arguments})"

    @abstractmethod
    def _update(self, key: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        """Update ``param`` in place from ``grad`` (already clipped, in ``param``'s dtype)."""

    def _slots(self, key: str, param: np.ndarray, *names: str) -> list[np.ndarray]:
        """The state arrays ``names`` for ``key``, made as zeros like ``param`` on first use."""
        slots = self.state.setdefault(key, {})
        for name in names:
            if name not in slots:
                slots[name] = np.zeros_like(param)
            if slots[name].shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}.apply: expected params[{key!r}] of shape "
                    f"{check.shape_text(slots[name].shape)}, as when its state was made; got "
                    f"{check.shape_text(param.shape)}."
                )
        return [slots[name] for name in names]

    def _checked(self, params: object, grads: object) -> dict[str, np.ndarray]:
        """The gradients in their params' dtypes, after checking names, kinds and shapes."""
        owner = f"{type(self).__name__}.apply"
        for name, value in (("params", params), ("grads", grads)):
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"{owner}: expected {name} to be a dict of arrays; got {type(value).__name__}."
                )
        if params.keys() != grads.keys():
            missing = sorted(set(params) - set(grads))
            unexpected = sorted(set(grads) - set(params))
            raise ValueError(
                f"{owner}: expected grads with the same keys as params; got grads missing "
                f"{missing} and with unexpected {unexpected}."
            )
        checked = {}
        for key, param in params.items():
            if not isinstance(param, np.ndarray) or param.dtype.name not in check.FLOAT_DTYPES:
                kind = param.dtype if isinstance(param, np.ndarray) else type(param).__name__
                raise TypeError(
                    f"{owner}: expected params[{key!r}] to be a float32 or float64 NumPy array; "
                    f"got {kind}."
                )
            grad = check.numeric_array(owner, f"grads[{key!r}]", grads[key], param.dtype)
            check.check_shape(owner, f"grads[{key!r}]", grad, param.shape)
            checked[key] = grad
        return checked

    def _clipped(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New clipped arrays, or ``grads`` itself when no clipping is set."""
        if self.clipnorm is not None:
            limit = self.clipnorm
            return {
                key: grad * (limit / max(math.sqrt(np.sum(np.square(grad))), limit))
                for key, grad in grads.items()
            }
        if self.global_clipnorm is not None:
            limit = self.global_clipnorm
            norm = math.sqrt(sum(float(np.sum(np.square(grad))) for grad in grads.values()))
            return {key: grad * (limit / max(norm, limit)) for key, grad in grads.items()}
        if self.clipvalue is not None:
            return {
                key: np.clip(grad, -self.clipvalue, self.clipvalue) for key, grad in grads.items()
            }
        return grads


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum.

    ``v = momentum * v - lr * g``; then ``w += v``, or with Nesterov ``w += momentum * v - lr * g``.
    Without momentum, ``w -= lr * g``.

    Args:
        learning_rate: see ``Optimizer``.
        momentum: in ``[0, 1)``.
        nesterov: whether to use Nesterov momentum.
        **options: ``weight_decay``, ``clipnorm``, ``global_clipnorm`` or ``clipvalue``.
    """

    def __init__(
        self,
        learning_rate: float | Schedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **options: float | None,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.momentum = check.rate("SGD", "momentum", momentum)
        self.nesterov = check.boolean("SGD", "nesterov", nesterov)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, key, param, grad, lr):
        if self.momentum == 0:
            param -= lr * grad
            return
        (velocity,) = self._slots(key, param, "momentum")
        velocity *= self.momentum
        velocity -= lr * grad
        if self.nesterov:
            param += self.momentum * velocity - lr * grad
        else:
            param += velocity


class RMSprop(Optimizer):
    """Steps scaled by a running root mean square of the gradients.

    ``v = rho * v + (1 - rho) * g**2``; centered also keeps ``a = rho * a + (1 - rho) * g`` and
    uses ``v - a**2``; the step is ``lr * g / sqrt(v + epsilon)`` (epsilon inside the root, as
    in Keras), taken directly or through momentum ``m = momentum * m + step; w -= m``.

    Args:
        learning_rate: see ``Optimizer``.
        rho: decay of the running averages, in ``[0, 1)``.
        momentum: in ``[0, 1)``.
        epsilon: a positive float for numerical stability.
        centered: whether to divide by the running variance rather than the mean square.
        **options: ``weight_decay``, ``clipnorm``, ``global_clipnorm`` or ``clipvalue``.
    """

    def __init__(
        self,
        learning_rate: float | Schedule = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **options: float | None,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.rho = check.rate("RMSprop", "rho", rho)
        self.momentum = check.rate("RMSprop", "momentum", momentum)
        self.epsilon = _positive("RMSprop", "epsilon", epsilon)
        self.centered = check.boolean("RMSprop", "centered", centered)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }

    def _update(self, key, param, grad, lr):
        rho = self.rho
        (velocity,) = self._slots(key, param, "velocity")
        velocity *= rho
        velocity += (1 - rho) * np.square(grad)
        if self.centered:
            (average,) = self._slots(key, param, "average_gradient")
            average *= rho
            average += (1 - rho) * grad
            denominator = velocity - np.square(average) + self.epsilon
        else:
            denominator = velocity + self.epsilon
        step = lr * grad / np.sqrt(denominator)
        if self.momentum > 0:
            (momentum,) = self._slots(key, param, "momentum")
            momentum *= self.momentum
            momentum += step
            param -= momentum
        else:
            param -= step


class Adam(Optimizer):
    """Adaptive moment estimation, with optional AMSGrad.

    ``m += (1 - beta_1) * (g - m)``, ``v += (1 - beta_2) * (g**2 - v)`` (AMSGrad uses the running
    maximum of ``v``), and with ``t = iterations + 1``:
    ``w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)``.
    (Keras folds the bias corrections into the rate, so epsilon is not bias-corrected.)

    Args:
        learning_rate: see ``Optimizer``.
        beta_1: decay of the first moment, in ``[0, 1)``.
        beta_2: decay of the second moment, in ``[0, 1)``.
        epsilon: a positive float for numerical stability.
        amsgrad: whether to use the AMSGrad variant.
        **options: ``weight_decay``, ``clipnorm``, ``global_clipnorm`` or ``clipvalue``.
    """

    def __init__(
        self,
        learning_rate: float | Schedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **options: float | None,
    ) -> None:
        super().__init__(learning_rate, **options)
        owner = type(self).__name__
        self.beta_1 = check.rate(owner, "beta_1", beta_1)
        self.beta_2 = check.rate(owner, "beta_2", beta_2)
        self.epsilon = _positive(owner, "epsilon", epsilon)
        self.amsgrad = check.boolean(owner, "amsgrad", amsgrad)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }

    def _update(self, key, param, grad, lr):
        m, v = self._slots(key, param, "momentum", "velocity")
        # The bias corrections run in the param's dtype, as in Keras (float32 shifts them a bit).
        real = param.dtype.type
        t = real(self.iterations + 1)
        alpha = real(lr) * np.sqrt(1 - real(self.beta_2) ** t) / (1 - real(self.beta_1) ** t)
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (np.square(grad) - v)
        if self.amsgrad:
            (v_hat,) = self._slots(key, param, "velocity_hat")
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        param -= alpha * m / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with decoupled weight decay, ``w *= 1 - weight_decay * lr`` before each update.

    Args:
        learning_rate: see ``Optimizer``.
        weight_decay: a float >= 0 (required, unlike the other optimizers).
        beta_1: as for ``Adam``.
        beta_2: as for ``Adam``.
        epsilon: as for ``Adam``.
        amsgrad: as for ``Adam``.
        **options: ``clipnorm``, ``global_clipnorm`` or ``clipvalue``.
    """

    def __init__(
        self,
        learning_rate: float | Schedule = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **options: float | None,
    ) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: expected weight_decay to be a float >= 0; got None.")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **options
        )


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def get(identifier: str | Optimizer) -> Optimizer:
    """A default-configured optimizer for a name (any case), or the optimizer itself.

    Args:
        identifier: ``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``, or an ``Optimizer``.

    Returns:
        An ``Optimizer`` instance.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(
            f"optimizers.get: expected an optimizer name or an Optimizer; got {identifier!r}."
        )
    if identifier.lower() not in OPTIMIZERS:
        listed = ", ".join(repr(name) for name in OPTIMIZERS)
        raise ValueError(
            f"optimizers.get: unknown optimizer {identifier!r}; expected one of {listed}."
        )
    return OPTIMIZERS[identifier.lower()]()


def _shapes(params: Mapping[str, np.ndarray]) -> str:
    """``name (shape), ...`` of ``params``, cut at 300 characters."""
    text = ", ".join(f"{name} {np.shape(value)}" for name, value in params.items())
    return text if len(text) <= 300 else text[:300] + "..."
