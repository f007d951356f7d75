"""ConvLSTM2D and MaxPooling3D in pure NumPy, computing what Keras 3 computes."""

from convlstm.layers.convlstm import ConvLSTM2D, ConvLSTM2DCell
from convlstm.layers.pooling import MaxPooling2D, MaxPooling3D

__version__ = "0.1.0"
__all__ = ["ConvLSTM2D", "ConvLSTM2DCell", "MaxPooling2D", "MaxPooling3D", "__version__"]
