"""Sequential: a stack of layers with Keras' compile / fit / evaluate / predict."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import limits, saving
from convlstm import losses as losses_module
from convlstm import optimizers as optimizers_module
from convlstm import training_metrics as metrics_module
from convlstm.callbacks import Callback, ProgressLogger
from convlstm.fit_arguments import fit_options, training_samples, validation_pair
from convlstm.layers.base import Layer, shape_arg
from convlstm.registry import config_arguments, deserialize, register, serialize


class History:
    """What ``fit`` returns: ``history["loss"]`` (and ``"val_loss"``) per epoch, as Keras."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            if key != "seconds":
                self.history.setdefault(key, []).append(value)


@register
class Sequential(Layer):
    """Layers applied one after another, trained with explicit backward passes.

    Args:
        layers: the layers, in order (more can be added with :meth:`add`).
        input_shape: optional shape of one sample, without the batch axis, for example
            ``(10, 64, 64, 1)``; with it, lazy layers are built at once and :meth:`summary`
            works before any data is seen.
    """

    def __init__(
        self, layers: Sequence[Layer] = (), input_shape: Sequence[int] | None = None
    ) -> None:
        if isinstance(layers, (Layer, str)) or not isinstance(layers, Sequence):
            raise TypeError(f"Sequential: expected layers to be a list of layers; got "
                            f"{check.describe(layers)}.")
        self.layers: list[Layer] = []
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape = None if input_shape is None else shape_arg(
            "Sequential", "input_shape", input_shape)
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics: list[metrics_module.Metric] = []
        self.stop_training = False
        self.metadata: dict[str, Any] = {}
        for layer in layers:
            self.add(layer)
        if self.input_shape is not None:
            self.build((None, *self.input_shape))

    def add(self, layer: Layer) -> None:
        """Append a layer."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a layer; got {type(layer).__name__}.")
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"Sequential.add: {type(layer).__name__} with return_state=True has three "
                "outputs; a Sequential layer must have one."
            )
        self.layers.append(layer)

    def sublayers(self) -> list[Layer]:
        return list(self.layers)

    def reset_states(self) -> None:
        """Clear the carried states of every stateful layer, nested ones included (Keras'
        ``model.reset_states()``), so the next call starts a new sequence."""
        pending = list(self.layers)
        while pending:
            layer = pending.pop()
            if getattr(layer, "stateful", False):
                layer.reset_states()
            pending += layer.sublayers()

    # ------------------------------------------------------------------ shapes

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Build every lazy layer for a batch of ``input_shape`` (batch axis first)."""
        shape = shape_arg("Sequential.build", "input_shape", input_shape)
        self.input_shape = shape[1:]
        for layer in self.layers:
            if hasattr(layer, "build"):
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def ensure_built(self) -> None:
        """Build from the recorded ``input_shape``, if there is one."""
        if self.input_shape is not None:
            self.build((None, *self.input_shape))

    def _unbuilt_layers(self) -> list[str]:
        """The names of the layers (nested ones included) that have no weights yet."""
        unbuilt, pending = [], list(self.layers)
        while pending:
            layer = pending.pop(0)
            if getattr(layer, "built", True) is False:
                unbuilt.append(type(layer).__name__)
            pending += layer.sublayers()
        return unbuilt

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace every weight from a list in the order of :meth:`get_weights` (the model must
        be built: its layers' weights exist)."""
        if self._unbuilt_layers():
            self.ensure_built()  # from a recorded input_shape, if there is one
        unbuilt = self._unbuilt_layers()
        if unbuilt:
            raise RuntimeError(
                "Sequential.set_weights: the model is not built (no weights yet, input "
                f"channels unknown, in: {', '.join(unbuilt)}); pass input_shape= to "
                "Sequential, call model.build((None, *sample_shape)), or call the model on data "
                "first."
            )
        super().set_weights(weights)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        shape = shape_arg("Sequential.compute_output_shape", "input_shape", input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a table of layers, output shapes and parameter counts, as Keras does.

        Args:
            print_fn: called with each line (default: ``print``); e.g. ``lines.append`` keeps
                the text.
        """
        if print_fn is not None and not callable(print_fn):
            raise TypeError(f"Sequential.summary: expected print_fn to be None or a callable; "
                            f"got {print_fn!r}.")
        if self.input_shape is None:
            raise RuntimeError(
                "Sequential.summary: the input shape is unknown; pass input_shape= or call the "
                "model on data first."
            )
        shape: tuple = (None, *self.input_shape)
        self.build(shape)  # layers added after the input shape was given build here
        rows = [("Layer", "Output shape", "Params")]
        total = trainable = 0
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            count = sum(owner.params[key].size for _, owner, key in layer.named_params())
            total += count
            trainable += sum(owner.params[key].size for _, owner, key in layer.named_params()
                             if key in owner.trainable_params)
            rows.append((type(layer).__name__, str(shape), f"{count:,}"))
        widths = [max(len(row[k]) for row in rows) for k in range(3)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows
        ]
        rule = "-" * len(lines[0])
        for line in [lines[0], rule, *lines[1:], rule, f"Total params: {total:,}",
                     f"Trainable params: {trainable:,}",
                     f"Non-trainable params: {total - trainable:,}"]:
            (print_fn or print)(line)

    # ----------------------------------------------------------------- compute

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Apply every layer in order."""
        if self.input_shape is None:
            self.input_shape = tuple(np.shape(x)[1:])  # lazy layers build on their first call
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, d_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Backward through every layer in reverse order; fills each layer's ``grads``.

        Without ``input_gradient`` (the input is data) it returns None, skips the layers below
        the first one with weights, and that one goes only as far as its weights
        (:meth:`Layer.backward_to_weights`).
        """
        first = 0 if input_gradient else next(
            (k for k, layer in enumerate(self.layers) if any(layer.named_params())),
            len(self.layers))
        for index in reversed(range(first, len(self.layers))):
            layer = self.layers[index]
            if index == first and not input_gradient:
                layer.backward_to_weights(d_output)
                return None
            d_output = layer.backward(d_output)
        return d_output if input_gradient else None

    def trainable_weights(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``(params, grads)`` dicts of every trainable weight under its unique name."""
        params, grads = {}, {}
        for name, owner, key in self.named_params():
            if key in owner.trainable_params:
                params[name], grads[name] = owner.params[key], owner.grads[key]
        return params, grads

    # ------------------------------------------------------------ training API

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = "mean_squared_error",
        metrics: Sequence[Any] | None = None,
    ) -> None:
        """Choose the optimizer, the loss and the metrics to report, by Keras name or as
        objects (metrics: see :mod:`convlstm.training_metrics`, e.g. ``["mae", "accuracy"]``)."""
        if metrics is not None and (isinstance(metrics, str) or not isinstance(
                metrics, Sequence)):
            raise TypeError(f"Sequential.compile: expected metrics to be a list of names or "
                            f"Metric objects; got {metrics!r}.")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self.metrics = [metrics_module.get(metric, self.loss) for metric in metrics or ()]
        names = [metric.name for metric in self.metrics]
        if len(set(names)) < len(names) or "loss" in names:
            raise ValueError(f"Sequential.compile: expected distinct metric names other than "
                             f"'loss'; got {names}.")

    def _require_compiled(self, owner: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"Sequential.{owner}: call compile(optimizer=..., loss=...) first.")

    def train_on_batch(
        self, x: np.ndarray, y: np.ndarray, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """One step: forward, loss, backward, optimizer update.

        Returns:
            The batch's loss (before the update, as Keras reports it); with compiled metrics
            ``[loss, *metrics]`` of this batch, and with ``return_dict`` a dict by name.
        """
        self._require_compiled("train_on_batch")
        return_dict = check.boolean("Sequential.train_on_batch", "return_dict", return_dict)
        x, y = _checked_pair("train_on_batch", x, y)
        loss, prediction = self._train_step(x, y)
        if not self.metrics and not return_dict:
            return loss
        logs = {"loss": loss, **_scores(self.metrics, y, prediction)}
        return logs if return_dict else list(logs.values())

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, loss, backward and update of a checked pair; the loss and the prediction
        before the update."""
        loss, prediction = self._gradients(x, y)
        self.optimizer.apply(*self.trainable_weights())
        return loss, prediction

    def compute_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, loss and backward of one batch, without an update: fills every layer's
        ``grads`` (read them with :meth:`trainable_weights`).

        Returns:
            The batch's loss and the prediction, (B, ...) as ``y``.
        """
        if self.loss is None:
            raise RuntimeError(
                "Sequential.compute_gradients: call compile(optimizer=..., loss=...) first.")
        return self._gradients(*_checked_pair("compute_gradients", x, y))

    def _gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`compute_gradients` on a pair already checked (by ``fit`` once, not per
        batch; by ``train_on_batch``)."""
        prediction = self.forward(x, training=True)
        loss, d_prediction = self.loss.value_and_gradient(y, prediction)
        self.backward(d_prediction, input_gradient=False)
        return loss, prediction

    def predict(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Inference over ``x`` in batches.

        Args:
            x: (N, ...) samples in the model's input layout; N may be 0.
            batch_size: samples per forward pass, a positive int.

        Returns:
            (N, ...) the outputs; for N == 0 an empty array of the output's shape, as Keras.
        """
        owner = "Sequential.predict"
        batch_size = check.positive_int(owner, "batch_size", batch_size)
        x = check.real_array(owner, "x", x)
        if x.ndim == 0:
            raise ValueError(f"{owner}: expected x with a first (samples) axis; got a scalar.")
        if len(x) == 0:
            return self._empty_output(x.shape)
        return np.concatenate(
            [self.forward(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
        )

    def _empty_output(self, input_shape: tuple[int, ...]) -> np.ndarray:
        """The output for a batch of no samples: zero rows of the output's shape and dtype."""
        if self.input_shape is None:
            self.build((None, *input_shape[1:]))
        output_shape = self.compute_output_shape(input_shape)
        dtypes = [owner.params[key].dtype for _, owner, key in self.named_params()]
        return np.empty(output_shape, np.result_type(*dtypes) if dtypes else np.float32)

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int = 32, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """Mean loss (and compiled metrics) over ``(x, y)``, batches weighted by their size.

        Returns:
            As Keras: the loss alone without metrics; ``[loss, *metrics]`` with them; a dict
            by name with ``return_dict``.
        """
        if self.loss is None:
            raise RuntimeError("Sequential.evaluate: call compile(optimizer=..., loss=...) first.")
        batch_size = check.positive_int("Sequential.evaluate", "batch_size", batch_size)
        return_dict = check.boolean("Sequential.evaluate", "return_dict", return_dict)
        x, y = _checked_pair("evaluate", x, y)
        tracked = [metrics_module.get(metric) for metric in self.metrics]
        total = 0.0
        for start in range(0, len(x), batch_size):
            truth, prediction = y[start : start + batch_size], self.forward(
                x[start : start + batch_size])
            total += self.loss(truth, prediction) * len(truth)
            for metric in tracked:
                metric.update(truth, prediction)
        logs = {"loss": float(total / len(x)), **{m.name: m.result() for m in tracked}}
        if return_dict:
            return logs
        return list(logs.values()) if tracked else logs["loss"]

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks: Sequence[Callback] = (),
        verbose: int = 1,
        seed: int | None = None,
    ) -> History:
        """Train for ``epochs`` epochs of mini-batch steps.

        Args:
            x: inputs; the first axis indexes samples.
            y: targets, with as many samples as ``x``.
            epochs: how many passes over the training samples, as Keras.
            batch_size: samples per step, as Keras.
            validation_data: ``(x_val, y_val)`` evaluated after every epoch.
            validation_split: else this fraction of the samples, taken from the end before any
                shuffling (as Keras), is held out for validation.
            shuffle: reshuffle the training samples every epoch (from ``seed``).
            callbacks: :mod:`convlstm.callbacks` objects (early stopping, checkpoints, ...).
            verbose: 1 prints one progress line per epoch; 0 is silent.
            seed: seeds the shuffling.

        Returns:
            A :class:`History`; ``history["loss"][e]`` is epoch e's mean training loss, each
            batch's loss (before its update) weighted by its size, as Keras reports it.
        """
        self._require_compiled("fit")
        options = fit_options("Sequential.fit", epochs=epochs, batch_size=batch_size,
                              shuffle=shuffle, callbacks=callbacks, verbose=verbose, seed=seed)
        x, y = _checked_pair("fit", x, y)
        if validation_data is not None:
            validation_data = _checked_pair("fit", *validation_pair("Sequential.fit",
                                                                    validation_data),
                                            names=("validation_data's x_val", "y_val"))
        else:
            split = training_samples("Sequential.fit", len(x), validation_split)
            if split < len(x):
                x, y, validation_data = x[:split], y[:split], (x[split:], y[split:])

        def step(rows: np.ndarray) -> float:
            loss, prediction = self._train_step(x[rows], y[rows])
            for metric in self.metrics:
                metric.update(y[rows], prediction)
            return loss

        return train_epochs(
            self, len(x), step,
            None if validation_data is None else (lambda: self.evaluate(
                *validation_data, batch_size=options["batch_size"], return_dict=True)),
            **options)

    # ------------------------------------------------------------------- files

    def save(self, path: str, include_states: bool = False) -> str:
        """Write the model (config and weights, and with ``include_states`` the carried states
        of stateful layers) to a native ``.npz`` file; see :func:`convlstm.load`."""
        return saving.save(self, path, include_states)

    def save_keras(self, path: str) -> str:
        """Write a Keras 3 ``.keras`` archive (or, for a ``.weights.h5`` path, the weights) that
        ``keras.saving.load_model`` reads; needs h5py (``pip install h5py``)."""
        from convlstm.keras import save_keras

        return save_keras(self, path)

    def save_onnx(self, path: str, **options: Any) -> str:
        """Write an ONNX model; see :func:`convlstm.onnx.export` (needs the onnx package)."""
        from convlstm.onnx import export

        return export(self, path, **options)

    def get_config(self) -> dict[str, Any]:
        return {
            "layers": [serialize(layer) for layer in self.layers],
            "input_shape": None if self.input_shape is None else list(self.input_shape),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        config = config_arguments(cls, config)
        layers, input_shape = config.get("layers", []), config.get("input_shape")
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential.from_config: expected layers to be a list of layer "
                            f"configs; got {layers!r:.80}.")
        if input_shape is not None and (not isinstance(input_shape, (list, tuple)) or not all(
                n is None or (type(n) is int and n > 0) for n in input_shape)):
            raise TypeError(f"Sequential.from_config: expected input_shape to be a list of "
                            f"positive ints (or None); got {input_shape!r:.80}.")
        with limits.building(cls, config):
            return cls([deserialize(spec) for spec in layers], input_shape)

    def __repr__(self) -> str:
        return f"Sequential({self.layers!r})"


def run_epochs(
    model: Sequential,
    samples: int,
    step: Callable[[np.ndarray], float],
    evaluate: Callable[[], dict[str, float]] | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    callbacks: Sequence[Callback],
    verbose: int,
    seed: int | None,
) -> History:
    """The epochs of :meth:`Sequential.fit`, shared with :func:`convlstm.distributed.fit` so
    that both make the same batches and report the same logs.

    Args:
        model: the model trained: its ``metrics`` are reset every epoch and reported,
            ``stop_training`` is read, callbacks see it.
        samples: how many training samples; every epoch shuffles ``range(samples)`` from
            ``seed`` (one generator for the whole run).
        step: trains on the samples at the given indices, updates ``model.metrics`` with
            them, and returns the batch's loss.
        evaluate: returns the validation loss and metrics by name after each epoch, or None.
        epochs: as :meth:`Sequential.fit`.
        batch_size: as :meth:`Sequential.fit`.
        shuffle: as :meth:`Sequential.fit`.
        callbacks: as :meth:`Sequential.fit`.
        verbose: as :meth:`Sequential.fit`.
        seed: as :meth:`Sequential.fit`.

    Returns:
        The :class:`History`.
    """
    options = fit_options("run_epochs", epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                          callbacks=callbacks, verbose=verbose, seed=seed)
    samples = check.positive_int("run_epochs", "samples", samples)
    return train_epochs(model, samples, step, evaluate, **options)


def train_epochs(
    model: Sequential,
    samples: int,
    step: Callable[[np.ndarray], float],
    evaluate: Callable[[], dict[str, float]] | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    callbacks: list[Callback],
    verbose: int,
    seed: int | None,
) -> History:
    """:func:`run_epochs` once its arguments are checked: ``samples`` >= 1 and the options as
    :func:`~convlstm.fit_arguments.fit_options` returns them (callers that checked them
    already, ``Sequential.fit`` and ``convlstm.distributed.fit``, come here directly)."""
    callbacks = callbacks + ([ProgressLogger()] if verbose else [])
    for callback in callbacks:
        callback.model = model
    rng = np.random.default_rng(seed)
    history = History()
    model.stop_training = False
    _notify(callbacks, "on_train_begin", {"epochs": epochs})
    for epoch in range(epochs):
        _notify(callbacks, "on_epoch_begin", epoch, {})
        started = time.perf_counter()
        order = rng.permutation(samples) if shuffle else np.arange(samples)
        total, seen = 0.0, 0
        for metric in model.metrics:
            metric.reset()
        for batch, start in enumerate(range(0, samples, batch_size)):
            chosen = order[start : start + batch_size]
            loss = step(chosen)
            total, seen = total + loss * len(chosen), seen + len(chosen)
            running = {metric.name: metric.result() for metric in model.metrics}
            _notify(callbacks, "on_batch_end", batch, {"loss": loss, **running})
            if model.stop_training:  # as Keras: a callback may stop within an epoch
                break
        logs = {"loss": total / seen, **{m.name: m.result() for m in model.metrics}}
        if evaluate is not None:
            logs.update({f"val_{name}": value for name, value in evaluate().items()})
        logs["seconds"] = time.perf_counter() - started
        history.append(epoch, logs)
        _notify(callbacks, "on_epoch_end", epoch, logs)
        if model.stop_training:
            break
    _notify(callbacks, "on_train_end", {})
    return history


def _scores(
    metrics: list[metrics_module.Metric], y: np.ndarray, prediction: np.ndarray,
    reset: bool = True,
) -> dict[str, float]:
    """Update each metric with a batch (after a reset, unless ``reset`` is False: a running
    epoch) and return the results by name."""
    for metric in metrics:
        if reset:
            metric.reset()
        metric.update(y, prediction)
    return {metric.name: metric.result() for metric in metrics}


def _notify(callbacks: list[Callback], hook: str, *arguments: Any) -> None:
    for callback in callbacks:
        getattr(callback, hook)(*arguments)


def _checked_pair(
    owner: str, x: object, y: object, names: tuple[str, str] = ("x", "y")
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as real arrays with the same number (>= 1) of samples."""
    owner = f"Sequential.{owner}"
    x, y = (check.real_array(owner, name, value) for name, value in zip(names, (x, y)))
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{owner}: expected {names[0]} and {names[1]} with the same number of samples; got "
            f"shapes {x.shape} and {y.shape}."
        )
    if len(x) == 0:
        raise ValueError(f"{owner}: expected at least one sample in {names[0]} and {names[1]}; "
                         "got none.")
    return x, y
