"""Keras files in and out: Keras 3 ``.keras`` archives and ``.weights.h5`` files, and legacy
``.h5`` files written by Keras 3 or by tf.keras 2.x.

:func:`load_keras` returns a :class:`~convlstm.Sequential` with the file's weights;
:func:`save_keras` writes a ``.keras`` archive (or, for a ``.weights.h5`` path, the weights
alone) that ``keras.saving.load_model`` (Keras 3) loads and runs to the same outputs.

Reading a file never runs code from it: configs are parsed as JSON and every Keras layer goes
through :data:`LAYER_MAPS`, the one table of what is supported and how each argument is renamed.

Supported Keras layers (Sequential models and single-path Functional models)::

    Keras                     here
    ConvLSTM2D                ConvLSTM2D  filters -> out_channels, strides -> stride,
                                          dilation_rate -> dilation, in_channels from the
                                          input shape tracked through the model
    ZeroPadding3D             only right before a ConvLSTM2D with padding="valid", padding
                              height and width symmetrically and time not at all: it becomes
                              that layer's int padding (save_keras writes int padding so)
    Conv2D, Conv3D, Dense     same names (groups=1, no LoRA)
    MaxPooling2D/3D           strides -> stride
    BatchNormalization        same names (no renorm, no virtual batches)
    Flatten, Dropout, ReLU, Softmax, Activation, TimeDistributed   same names
    LeakyReLU                 negative_slope (Keras 2: alpha)
    InputLayer                skipped; it gives the input shape

A LeakyReLU after a ConvLSTM2D stays a separate layer. Initializers are kept by name when this
library knows them (they do not affect loaded weights); regularizers and constraints, which
only act in training, are dropped.

hard_sigmoid. Keras 2 and tf.keras 2.x define ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)``
(and ConvLSTM2D's default ``recurrent_activation`` there is "hard_sigmoid"); Keras 3 defines
it as ``relu6(x + 3) / 6``. The file decides: its ``keras_version`` (``metadata.json`` in a
``.keras`` archive, the root attribute of an ``.h5`` file, the top-level key of a JSON config)
is read, and when the major version is below 3, "hard_sigmoid" becomes
:data:`HARD_SIGMOID_KERAS2`; otherwise it is the library's (Keras 3) "hard_sigmoid". A legacy
``.h5`` file without a version is taken as Keras 2; a ``.weights.h5`` file and a config without
one as Keras 3.

h5py is an optional dependency: ``pip install h5py`` (from a clone: ``pip install -e '.[keras]'``).
"""


from convlstm.keras.files import load_keras, save_keras
from convlstm.keras.from_keras import from_keras_config
from convlstm.keras.mapping import (
    HARD_SIGMOID_KERAS2,
    KERAS_FORMAT_VERSION,
    LAYER_MAPS,
    SUPPORTED_LAYERS,
)
from convlstm.keras.to_keras import to_keras_config

__all__ = [
    "HARD_SIGMOID_KERAS2",
    "KERAS_FORMAT_VERSION",
    "LAYER_MAPS",
    "SUPPORTED_LAYERS",
    "from_keras_config",
    "load_keras",
    "save_keras",
    "to_keras_config",
]
