"""3-D max pooling over (N, D, H, W, C) volumes."""

from __future__ import annotations

import itertools

import numpy as np

from convlstm.functional.windows import Pads, output_size, window_slice, zero_pad


def max_pool3d(
    x: np.ndarray, pool_size: tuple[int, int, int], stride: tuple[int, int, int], pads: Pads
) -> np.ndarray:
    """Maximum of every window.

    Args:
        x: (N, D, H, W, C).
        pool_size, stride: per-axis ints for D, H, W.
        pads: ((front, back), (top, bottom), (left, right)); padded cells hold -inf, so they
            never win.

    Returns:
        (N, D', H', W', C).
    """
    out_dhw = output_size(x.shape[1:4], pool_size, stride, pads, (1, 1, 1))
    padded = zero_pad(x, pads, fill=-np.inf)
    out = None
    # One vectorised pass per offset inside the window: pool_size products, not one per window.
    for offset in itertools.product(*map(range, pool_size)):
        view = padded[(slice(None), *map(window_slice, offset, stride, out_dhw), slice(None))]
        if out is None:
            out = view.copy()
        else:
            np.maximum(out, view, out=out)
    return out
