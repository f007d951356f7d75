"""ConvLSTM2D and MaxPooling3D in pure NumPy, computing what Keras 3 computes, with explicit
backward passes, the layers around them, losses, optimizers and a trainable Sequential model."""

from convlstm import callbacks, datasets, forecasting, losses, metrics, onnx, optimizers
from convlstm._version import __version__
from convlstm.forecasting import forecast
from convlstm.keras import load_keras, save_keras
from convlstm.layers.activation import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convgru import (
    ConvGRU1D,
    ConvGRU1DCell,
    ConvGRU2D,
    ConvGRU2DCell,
    ConvGRU3D,
    ConvGRU3DCell,
)
from convlstm.layers.convlstm import ConvLSTM2D, ConvLSTM2DCell
from convlstm.layers.convlstm_ranks import ConvLSTM1D, ConvLSTM1DCell, ConvLSTM3D, ConvLSTM3DCell
from convlstm.layers.core import Dense, Dropout, Flatten
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling1D, MaxPooling2D, MaxPooling3D
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth
from convlstm.layers.wrappers import TimeDistributed
from convlstm.models import History, Sequential
from convlstm.pretrained import pretrained
from convlstm.saving import load

__all__ = [
    "Activation",
    "BatchNormalization",
    "Bidirectional",
    "Conv2D",
    "Conv3D",
    "ConvGRU1D",
    "ConvGRU1DCell",
    "ConvGRU2D",
    "ConvGRU2DCell",
    "ConvGRU3D",
    "ConvGRU3DCell",
    "ConvLSTM1D",
    "ConvLSTM1DCell",
    "ConvLSTM2D",
    "ConvLSTM2DCell",
    "ConvLSTM3D",
    "ConvLSTM3DCell",
    "Dense",
    "DepthToSpace",
    "Dropout",
    "Flatten",
    "History",
    "LeakyReLU",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SpaceToDepth",
    "Tanh",
    "TimeDistributed",
    "__version__",
    "callbacks",
    "datasets",
    "forecast",
    "forecasting",
    "load",
    "load_keras",
    "losses",
    "metrics",
    "onnx",
    "optimizers",
    "pretrained",
    "save_keras",
]
