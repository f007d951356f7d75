"""Batch inference: a model mapped over the samples of an array, lazily, chunk by chunk."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client

from convlstm import _validation as check
from convlstm.distributed.sources import as_samples, check_model
from convlstm.distributed.tasks import ModelSpec, predict_block
from convlstm.models import Sequential


def predict(model: Sequential, x: Any, *, client: Client | None = None,
            batch_size: int = 32) -> da.Array:
    """``model.predict(x)`` on Dask: lazy, chunked by ``batch_size`` samples.

    Args:
        model: a built (or buildable from ``x``) Sequential; it need not be compiled.
        x: (N, ...) samples in the model's input layout: a NumPy array, a memory-mapped
            ``.npy`` (``np.load(path, mmap_mode="r")``), a zarr array, a dask array, or the
            path of a ``.npy`` file or zarr store. Workers read files themselves, so the path
            must be one they share.
        client: a ``distributed.Client`` (a local cluster or a remote scheduler); None uses
            Dask's default scheduler (or the current client, if there is one).
        batch_size: samples per chunk, and per forward pass.

    Returns:
        A dask array of the predictions, (N, ...) chunked by ``batch_size`` samples;
        ``.compute()`` gives the NumPy array ``model.predict(x)`` gives, to float rounding.
    """
    return _map_samples("distributed.predict", model, x, client, batch_size, None)


def forecast(model: Sequential, x: Any, frames: int, *, client: Client | None = None,
             batch_size: int = 32) -> da.Array:
    """:func:`convlstm.forecast` (``frames`` frames after each sequence of ``x``) on Dask.

    Args and returns as :func:`predict`; the result is (N, frames, H, W, C).
    """
    frames = check.positive_int("distributed.forecast", "frames", frames)
    return _map_samples("distributed.forecast", model, x, client, batch_size, frames)


def _map_samples(owner: str, model: Sequential, x: Any, client: Client | None,
                 batch_size: int, frames: int | None) -> da.Array:
    check_model(owner, model)
    batch_size = check.positive_int(owner, "batch_size", batch_size)
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"{owner}: expected client to be a distributed.Client or None; got "
                        f"{type(client).__name__}.")
    data = as_samples(owner, x, batch_size)
    sample = tuple(data.shape[1:])
    if model.input_shape is None:
        model.build((None, *sample))
    expected = tuple(model.input_shape)
    if len(expected) != len(sample) or any(e not in (None, s) for e, s in zip(expected, sample)):
        raise ValueError(f"{owner}: expected samples of shape {expected} (the model's input); "
                         f"got {sample}.")
    weights = model.get_weights()
    dtype = np.result_type(*[w.dtype for w in weights]) if weights else np.dtype("float32")
    if frames is None:
        tail = tuple(model.compute_output_shape((1, *sample))[1:])
    else:
        tail = (frames, *sample[1:])
    spec = ModelSpec(model)
    spec_ref = (client.scatter(spec, broadcast=True, hash=False) if client is not None
                else dask.delayed(spec, name=f"convlstm-model-{spec.token}", traverse=False))
    blocks = data.to_delayed().ravel()
    apply = dask.delayed(predict_block, pure=True)
    pieces = [
        da.from_array(np.empty((0, *tail), dtype), chunks=-1) if n == 0 else
        da.from_delayed(apply(block, spec_ref, batch_size, dtype.str, frames), (n, *tail), dtype)
        for block, n in zip(blocks, data.chunks[0])
    ]
    return da.concatenate(pieces, axis=0)
