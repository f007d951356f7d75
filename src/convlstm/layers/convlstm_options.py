"""The options of the ConvLSTM family: frozen dataclasses, validated once, whose fields are the
config.

:class:`ConvLSTMCellOptions` is what one step needs (a cell); :class:`ConvLSTMOptions` adds what
a layer over a sequence needs. The dataclass ``__init__`` is the layer's signature (positional
arguments first, then keyword-only ones), ``get_config`` is :meth:`ConvLSTMCellOptions.config`
and ``from_config`` feeds the config back to it. A layer exposes every field as a read-only
attribute (:func:`expose_options`), so ``layer.kernel_size`` is ``layer.options.kernel_size``.

The geometry is written for ``rank`` spatial axes: ConvLSTM1D/3D are subclasses that set
``rank`` and ``owner``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar, TypeVar

import numpy as np

from convlstm import _validation as check
from convlstm import initializers
from convlstm.functional import activations
from convlstm.functional.windows import Pads, output_size, resolve_pads
from convlstm.layers.layout import DATA_FORMATS, Layout

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ConvLSTMCellOptions:
    """The options of one ConvLSTM step (the arguments of ``ConvLSTM2DCell``; documented in
    ``ConvLSTM2D``). Values are normalised: tuples for sizes, an ``Activation`` for each
    activation, a NumPy dtype."""

    owner: ClassVar[str] = "ConvLSTM2DCell"  # the name that starts every error message
    rank: ClassVar[int] = 2  # spatial axes

    in_channels: int
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
    unit_forget_bias: bool = True
    peephole: bool = False
    peephole_initializer: str = "zeros"
    data_format: str = "channels_last"
    dtype: str | np.dtype = "float32"
    seed: int | None = None

    def __post_init__(self) -> None:
        owner, rank = self.owner, self.rank
        self._set(
            in_channels=check.positive_int(owner, "in_channels", self.in_channels),
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
            unit_forget_bias=check.boolean(owner, "unit_forget_bias", self.unit_forget_bias),
            peephole=check.boolean(owner, "peephole", self.peephole),
            peephole_initializer=initializers.check(
                owner, "peephole_initializer", self.peephole_initializer
            ),
            data_format=check.choice(owner, "data_format", self.data_format, DATA_FORMATS),
            dtype=check.float_dtype(owner, self.dtype),
            seed=check.seed_arg(owner, self.seed),
        )

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

    def cell_options(self, in_channels: int, seed: int | None) -> ConvLSTMCellOptions:
        """The options of one cell of this layer: these values with its own ``in_channels``
        and ``seed``."""
        shared = {item.name: getattr(self, item.name) for item in fields(ConvLSTMCellOptions)}
        return self.cell_options_class(**{**shared, "in_channels": in_channels, "seed": seed})

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
                f"padding={self.padding!r}."
            )
        return out

    # ----------------------------------------------------------------- weights

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keras layout: kernel (*k, C, 4F), recurrent_kernel (*k, F, 4F), bias (4F,); with
        ``peephole``, then peephole (3, F) (rows i, f, o)."""
        F = self.out_channels
        shapes = {
            "kernel": (*self.kernel_size, self.in_channels, 4 * F),
            "recurrent_kernel": (*self.kernel_size, F, 4 * F),
            "bias": (4 * F,),
            "peephole": (3, F),
        }
        present = {"bias": self.use_bias, "peephole": self.peephole}
        return {name: shape for name, shape in shapes.items() if present.get(name, True)}

    def initial_weights(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Fresh weights from the initializers, drawn from ``rng`` in the order kernel,
        recurrent_kernel, bias, peephole."""
        initializer = {
            "kernel": self.kernel_initializer,
            "recurrent_kernel": self.recurrent_initializer,
            "bias": self.bias_initializer,
            "peephole": self.peephole_initializer,
        }
        params = {
            name: initializers.initialize(initializer[name], shape, rng, self.dtype)
            for name, shape in self.weight_shapes().items()
        }
        if self.use_bias and self.unit_forget_bias:
            F = self.out_channels
            # Jozefowicz et al.: a forget gate open at the start lets gradients flow.
            params["bias"][F : 2 * F] = 1.0
        return params


@dataclass(frozen=True)
class ConvLSTMOptions(ConvLSTMCellOptions):
    """The options of a ConvLSTM layer over a sequence (the arguments of ``ConvLSTM2D``): the
    cell's, then the stack and sequence options."""

    owner: ClassVar[str] = "ConvLSTM2D"
    cell_options_class: ClassVar[type[ConvLSTMCellOptions]] = ConvLSTMCellOptions

    leaky_relu_slope: float | None = None
    num_layers: int = 1
    _: KW_ONLY
    return_sequences: bool = True
    return_state: bool = False
    go_backwards: bool = False
    stateful: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self.owner
        self._set(
            leaky_relu_slope=_slope(owner, self.leaky_relu_slope),
            num_layers=check.positive_int(owner, "num_layers", self.num_layers),
            return_sequences=check.boolean(owner, "return_sequences", self.return_sequences),
            return_state=check.boolean(owner, "return_state", self.return_state),
            go_backwards=check.boolean(owner, "go_backwards", self.go_backwards),
            stateful=check.boolean(owner, "stateful", self.stateful),
            dropout=check.rate(owner, "dropout", self.dropout),
            recurrent_dropout=check.rate(owner, "recurrent_dropout", self.recurrent_dropout),
        )


@dataclass(frozen=True)
class ConvLSTM1DCellOptions(ConvLSTMCellOptions):
    """:class:`ConvLSTMCellOptions` over one spatial axis (width)."""

    owner: ClassVar[str] = "ConvLSTM1DCell"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class ConvLSTM3DCellOptions(ConvLSTMCellOptions):
    """:class:`ConvLSTMCellOptions` over three spatial axes (depth, height, width)."""

    owner: ClassVar[str] = "ConvLSTM3DCell"
    rank: ClassVar[int] = 3


@dataclass(frozen=True)
class ConvLSTM1DOptions(ConvLSTMOptions):
    """:class:`ConvLSTMOptions` over one spatial axis (width)."""

    owner: ClassVar[str] = "ConvLSTM1D"
    rank: ClassVar[int] = 1
    cell_options_class: ClassVar[type[ConvLSTMCellOptions]] = ConvLSTM1DCellOptions


@dataclass(frozen=True)
class ConvLSTM3DOptions(ConvLSTMOptions):
    """:class:`ConvLSTMOptions` over three spatial axes (depth, height, width)."""

    owner: ClassVar[str] = "ConvLSTM3D"
    rank: ClassVar[int] = 3
    cell_options_class: ClassVar[type[ConvLSTMCellOptions]] = ConvLSTM3DCellOptions


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
    so ``help()`` reads like a constructor)."""
    return inspect.signature(options_class).replace(return_annotation=inspect.Signature.empty)


def expose_options(options_class: type) -> Callable[[T], T]:
    """Class decorator: every field of ``options_class`` becomes a read-only attribute of the
    layer, read from its ``options`` (``layer.kernel_size`` is ``layer.options.kernel_size``)."""

    def decorate(cls: T) -> T:
        for item in fields(options_class):
            getter = attrgetter(f"options.{item.name}")
            setattr(cls, item.name, property(getter, doc=f"``options.{item.name}``"))
        return cls

    return decorate
