"""The options of the ConvRNN family (ConvLSTM and ConvGRU): frozen dataclasses, validated
once, whose fields are the config.

:class:`ConvRNNCellOptions` holds what every cell shares; :class:`ConvLSTMCellOptions` and
:class:`ConvGRUCellOptions` add their own, and :class:`ConvLSTMOptions` and
:class:`ConvGRUOptions` add what a layer over a sequence needs (``_SequenceFields``, written
once for both). The dataclass ``__init__`` is the layer's signature (positional arguments
first, then keyword-only ones), ``get_config`` is :meth:`ConvRNNCellOptions.config` and
``from_config`` feeds the config back to it. A layer exposes every field as a read-only
attribute (:func:`expose_options`), so ``layer.kernel_size`` is ``layer.options.kernel_size``.

The geometry is written for ``rank`` spatial axes: the 1-D and 3-D options are subclasses that
set ``rank`` and ``owner`` (:func:`_ranked`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar, TypeVar

import numpy as np

from convlstm import _validation as check
from convlstm import initializers, limits
from convlstm.functional import activations
from convlstm.functional.windows import Pads, output_size, resolve_pads
from convlstm.layers.layout import DATA_FORMATS, Layout

T = TypeVar("T", bound=type)

# Keras 3's positional order of a convolutional recurrent layer's first arguments.
KERAS_ORDER = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate")


@dataclass(frozen=True)
class ConvRNNCellOptions:
    """The options every convolutional recurrent cell shares (ConvLSTM's and ConvGRU's;
    documented in ``ConvLSTM2D``). Values are normalised: tuples for sizes, an ``Activation``
    for each activation, a NumPy dtype."""

    owner: ClassVar[str] = "ConvRNNCell"  # the name that starts every error message
    rank: ClassVar[int] = 2  # spatial axes
    gates: ClassVar[int] = 4  # fused gates: the kernels' last axis is gates * out_channels

    in_channels: int | None  # None: the layer builds its weights on its first call
    out_channels: int
    kernel_size: int | tuple[int, ...] = 3
    padding: int | str | tuple[int, ...] = "same"
    stride: int | tuple[int, ...] = 1
    _: KW_ONLY
    dilation: int | tuple[int, ...] = 1
    activation: str | activations.Activation = "tanh"
    recurrent_activation: str | activations.Activation = "sigmoid"
    use_bias: bool = True
    kernel_initializer: str = "glorot_uniform"
    recurrent_initializer: str = "orthogonal"
    bias_initializer: str = "zeros"
    data_format: str = "channels_last"
    dtype: str | np.dtype = "float32"
    seed: int | None = None

    def __post_init__(self) -> None:
        owner, rank = self.owner, self.rank
        self._set(
            in_channels=None if self.in_channels is None
            else check.positive_int(owner, "in_channels", self.in_channels),
            out_channels=check.positive_int(owner, "out_channels", self.out_channels),
            kernel_size=check.int_tuple(owner, "kernel_size", self.kernel_size, rank),
            padding=check.padding_arg(owner, self.padding, rank, allow_explicit=True),
            stride=check.int_tuple(owner, "stride", self.stride, rank),
            dilation=check.int_tuple(owner, "dilation", self.dilation, rank),
        )
        if max(self.stride) > 1 and max(self.dilation) > 1:
            raise ValueError(
                f"{owner}: stride > 1 is not compatible with dilation > 1 (as in Keras); "
                f"got stride={self.stride} and dilation={self.dilation}."
            )
        self._set(
            activation=activations.get(owner, "activation", self.activation),
            recurrent_activation=activations.get(
                owner, "recurrent_activation", self.recurrent_activation
            ),
            use_bias=check.boolean(owner, "use_bias", self.use_bias),
            kernel_initializer=initializers.check(
                owner, "kernel_initializer", self.kernel_initializer
            ),
            recurrent_initializer=initializers.check(
                owner, "recurrent_initializer", self.recurrent_initializer
            ),
            bias_initializer=initializers.check(owner, "bias_initializer", self.bias_initializer),
            data_format=check.choice(owner, "data_format", self.data_format, DATA_FORMATS),
            dtype=check.float_dtype(owner, self.dtype),
            seed=check.seed_arg(owner, self.seed),
        )

    @classmethod
    def from_arguments(cls, args: tuple, kwargs: dict[str, Any]) -> ConvRNNCellOptions:
        """The options of a constructor call, seed or Keras style (``check.KERAS_NAMES``).

        Positionals follow the seed's order (``in_channels, out_channels, kernel_size, ...``)
        unless the second is a tuple or list, or only one is given and no ``out_channels`` or
        ``filters`` keyword: then Keras' order (``filters, kernel_size, strides, padding,
        data_format, dilation_rate``). A missing ``in_channels`` is None (built lazily).
        """
        keras_order = (len(args) > 1 and isinstance(args[1], (tuple, list))) or (
            len(args) == 1 and not {"out_channels", "filters"} & kwargs.keys())
        positional = KERAS_ORDER if keras_order else tuple(
            item.name for item in fields(cls) if not item.kw_only)
        given = check.seed_keywords(cls.owner, positional, args, kwargs)
        if "out_channels" not in given:
            raise TypeError(f"{cls.owner}: missing out_channels (Keras' filters).")
        return cls(**{"in_channels": None, **given})

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen: only validation writes

    # ------------------------------------------------------------------ config

    def config(self) -> dict[str, Any]:
        """The JSON-serialisable config, in the order of the constructor's arguments."""
        ordered = sorted(fields(self), key=lambda item: item.kw_only)  # stable: positional first
        return {item.name: self._config_value(item.name) for item in ordered}

    def _config_value(self, name: str) -> Any:
        value = getattr(self, name)
        if isinstance(value, activations.Activation):
            if activations.ACTIVATIONS.get(value.name) is not value:
                raise TypeError(
                    f"{self.owner}.get_config: {name} is the callable {value.name!r}, which "
                    f"cannot be serialised; pass one of the names "
                    f"{sorted(activations.ACTIVATIONS)} instead."
                )
            return value.name
        if isinstance(value, np.dtype):
            return value.name
        return list(value) if isinstance(value, tuple) else value

    # ---------------------------------------------------------------- geometry

    @property
    def layout(self) -> Layout:
        return Layout(self.data_format, self.rank)

    def pads(self, spatial: tuple[int, ...]) -> Pads:
        """The input convolution's (before, after) zero padding per spatial axis."""
        return resolve_pads(self.padding, spatial, self.kernel_size, self.stride, self.dilation)

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """The states' spatial sizes for input frames of size ``spatial``."""
        return output_size(spatial, self.kernel_size, self.stride, self.pads(spatial),
                           self.dilation)

    def checked_output_spatial(self, owner: str, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """:meth:`output_spatial`, refusing frames too small for one window."""
        out = self.output_spatial(spatial)
        if min(out) < 1:
            raise ValueError(
                f"{owner}: frames of {'x'.join(map(str, spatial))} are too small for "
                f"kernel_size={self.kernel_size} with dilation={self.dilation} and "
                f"padding={self.padding!r} (expected x with frames of at least one window)."
            )
        return out

    # ----------------------------------------------------------------- weights

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keras layout: kernel (*k, C, gates*F), recurrent_kernel (*k, F, gates*F), bias
        (gates*F,)."""
        width = self.gates * self.out_channels
        shapes = {
            "kernel": (*self.kernel_size, self.in_channels, width),
            "recurrent_kernel": (*self.kernel_size, self.out_channels, width),
        }
        return {**shapes, "bias": (width,)} if self.use_bias else shapes

    def initializers(self) -> dict[str, str]:
        """The initializer of each weight."""
        return {"kernel": self.kernel_initializer, "recurrent_kernel": self.recurrent_initializer,
                "bias": self.bias_initializer}

    def initial_weights(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Fresh weights from the initializers, drawn from ``rng`` in the order of
        :meth:`weight_shapes`."""
        initializer = self.initializers()
        return {
            name: initializers.initialize(initializer[name], shape, rng, self.dtype)
            for name, shape in self.weight_shapes().items()
        }


@dataclass(frozen=True)
class ConvLSTMCellOptions(ConvRNNCellOptions):
    """The options of one ConvLSTM step (the arguments of ``ConvLSTM2DCell``)."""

    owner: ClassVar[str] = "ConvLSTM2DCell"
    gates: ClassVar[int] = 4

    _: KW_ONLY
    unit_forget_bias: bool = True
    peephole: bool = False
    peephole_initializer: str = "zeros"

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self.owner
        self._set(
            unit_forget_bias=check.boolean(owner, "unit_forget_bias", self.unit_forget_bias),
            peephole=check.boolean(owner, "peephole", self.peephole),
            peephole_initializer=initializers.check(
                owner, "peephole_initializer", self.peephole_initializer
            ),
        )

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """kernel (*k, C, 4F), recurrent_kernel (*k, F, 4F), bias (4F,); with ``peephole``,
        then peephole (3, F) (rows i, f, o)."""
        shapes = super().weight_shapes()
        return {**shapes, "peephole": (3, self.out_channels)} if self.peephole else shapes

    def initializers(self) -> dict[str, str]:
        return {**super().initializers(), "peephole": self.peephole_initializer}

    def initial_weights(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        params = super().initial_weights(rng)
        if self.use_bias and self.unit_forget_bias:
            F = self.out_channels
            # Jozefowicz et al.: a forget gate open at the start lets gradients flow.
            params["bias"][F : 2 * F] = 1.0
        return params


@dataclass(frozen=True)
class ConvGRUCellOptions(ConvRNNCellOptions):
    """The options of one ConvGRU step (the arguments of ``ConvGRU2DCell``): the shared ones
    and Keras' ``reset_after``."""

    owner: ClassVar[str] = "ConvGRU2DCell"
    gates: ClassVar[int] = 3

    _: KW_ONLY
    reset_after: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set(reset_after=check.boolean(self.owner, "reset_after", self.reset_after))

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """kernel (*k, C, 3F), recurrent_kernel (*k, F, 3F), bias (2, 3F) ``[b; b']`` with
        ``reset_after``, else (3F,); gates z, r, h."""
        shapes = super().weight_shapes()
        if self.use_bias and self.reset_after:
            shapes["bias"] = (2, 3 * self.out_channels)
        return shapes


@dataclass(frozen=True)
class _SequenceFields:
    """The options of a layer over a sequence (a stack of cells), after its cell's."""

    leaky_relu_slope: float | None = None
    num_layers: int = 1
    _: KW_ONLY
    return_sequences: bool = True
    return_state: bool = False
    go_backwards: bool = False
    stateful: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0

    def _check_sequence(self, owner: str) -> None:
        object.__setattr__(self, "leaky_relu_slope", _slope(owner, self.leaky_relu_slope))
        for name in ("return_sequences", "return_state", "go_backwards", "stateful"):
            object.__setattr__(self, name, check.boolean(owner, name, getattr(self, name)))
        object.__setattr__(self, "num_layers",
                           check.positive_int(owner, "num_layers", self.num_layers))
        if not limits.budget_open():  # else the limits refuse each weight by name when drawn
            deeper_layer = self.cell_options(self.out_channels, None).weight_shapes()
            per_layer = sum(int(np.prod(shape)) for shape in deeper_layer.values())
            check.fits_in_memory(
                owner, "the weights (num_layers x the elements of a layer, set by out_channels "
                "and kernel_size)", (self.num_layers, per_layer), np.float64)
        for name in ("dropout", "recurrent_dropout"):
            object.__setattr__(self, name, check.rate(owner, name, getattr(self, name)))

    def cell_options(self, in_channels: int, seed: int | None) -> ConvRNNCellOptions:
        """The options of one cell of this layer: these values with its own ``in_channels``
        and ``seed``."""
        cell_class = self.cell_options_class  # type: ignore[attr-defined]
        shared = {item.name: getattr(self, item.name) for item in fields(cell_class)}
        return cell_class(**{**shared, "in_channels": in_channels, "seed": seed})


@dataclass(frozen=True)
class ConvLSTMOptions(_SequenceFields, ConvLSTMCellOptions):
    """The options of a ConvLSTM layer over a sequence (the arguments of ``ConvLSTM2D``): the
    cell's, then the stack and sequence options."""

    owner: ClassVar[str] = "ConvLSTM2D"
    cell_options_class: ClassVar[type[ConvRNNCellOptions]] = ConvLSTMCellOptions

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sequence(self.owner)


@dataclass(frozen=True)
class ConvGRUOptions(_SequenceFields, ConvGRUCellOptions):
    """The options of a ConvGRU layer over a sequence (the arguments of ``ConvGRU2D``)."""

    owner: ClassVar[str] = "ConvGRU2D"
    cell_options_class: ClassVar[type[ConvRNNCellOptions]] = ConvGRUCellOptions

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sequence(self.owner)


def _ranked(base: type, rank: int, owner: str, **class_values: Any) -> Any:
    """``base`` over ``rank`` spatial axes, its errors starting with ``owner``."""
    return type(f"{owner}Options", (base,), {"owner": owner, "rank": rank, **class_values,
                                             "__doc__": f":class:`{base.__name__}` of {owner}."})


ConvLSTM1DCellOptions = _ranked(ConvLSTMCellOptions, 1, "ConvLSTM1DCell")
ConvLSTM3DCellOptions = _ranked(ConvLSTMCellOptions, 3, "ConvLSTM3DCell")
ConvLSTM1DOptions = _ranked(ConvLSTMOptions, 1, "ConvLSTM1D",
                            cell_options_class=ConvLSTM1DCellOptions)
ConvLSTM3DOptions = _ranked(ConvLSTMOptions, 3, "ConvLSTM3D",
                            cell_options_class=ConvLSTM3DCellOptions)
ConvGRU1DCellOptions = _ranked(ConvGRUCellOptions, 1, "ConvGRU1DCell")
ConvGRU3DCellOptions = _ranked(ConvGRUCellOptions, 3, "ConvGRU3DCell")
ConvGRU1DOptions = _ranked(ConvGRUOptions, 1, "ConvGRU1D", cell_options_class=ConvGRU1DCellOptions)
ConvGRU3DOptions = _ranked(ConvGRUOptions, 3, "ConvGRU3D", cell_options_class=ConvGRU3DCellOptions)


def _slope(owner: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{owner}: expected leaky_relu_slope to be None or a float >= 0; got {value!r}."
        )
    if not value >= 0:
        raise ValueError(
            f"{owner}: expected leaky_relu_slope to be None or a float >= 0 (as Keras' "
            f"LeakyReLU); got {value!r}."
        )
    return float(value)


def signature_of(options_class: type) -> inspect.Signature:
    """The options dataclass's signature, the layer's ``__signature__`` (no return annotation,
    so ``help()`` reads like a constructor), with ``in_channels`` and ``out_channels``
    optional (see :meth:`ConvRNNCellOptions.from_arguments`; the Keras names of
    ``check.KERAS_NAMES`` are accepted too, but are not fields)."""
    signature = inspect.signature(options_class)
    parameters = [
        item.replace(default=None) if name in ("in_channels", "out_channels") else item
        for name, item in signature.parameters.items()
    ]
    return signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)


def expose_options(options_class: type) -> Callable[[T], T]:
    """Class decorator: every field of ``options_class`` becomes a read-only attribute of the
    layer, read from its ``options`` (``layer.kernel_size`` is ``layer.options.kernel_size``)."""

    def decorate(cls: T) -> T:
        for item in fields(options_class):
            getter = attrgetter(f"options.{item.name}")
            setattr(cls, item.name, property(getter, doc=f"``options.{item.name}``"))
        return cls

    return decorate
