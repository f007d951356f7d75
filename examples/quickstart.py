"""The seed example: a ConvLSTM2D over a 10-frame sequence, then 3-D max pooling."""

import numpy as np

from convlstm import ConvLSTM2D, MaxPooling3D

# in_channels, out_channels, kernel_size, padding, stride, leaky_relu_slope, num_layers
conv_lstm = ConvLSTM2D(1, 32, 3, 1, 1, 0.2, 1)

# batch=1, timesteps=10, height=32, width=32, channels=1
x = np.random.default_rng(0).random((1, 10, 32, 32, 1))
output = conv_lstm.forward(x)
print(output.shape)  # (1, 10, 32, 32, 32)

max_pool = MaxPooling3D((2, 2, 2), (2, 2, 2))
pooled = max_pool.forward(output)
print(pooled.shape)  # (1, 5, 16, 16, 32): time, height and width halve; channels stay
