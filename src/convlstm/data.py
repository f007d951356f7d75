"""Built-in data for the demo: Moving-MNIST-style sequences of shapes bouncing in a frame.

Each sequence holds a few glyphs (square, disc, triangle, cross, ring) that move in straight
lines, bounce off the frame's edges and overlap (brightest wins) where they meet. Everything is
drawn from one ``np.random.Generator``, so a seed fixes the whole data set.
"""

from __future__ import annotations

import numpy as np

GLYPHS = ("square", "disc", "triangle", "cross", "ring")


def glyph(name: str, size: int) -> np.ndarray:
    """A (size, size) float32 mask in [0, 1] of the named glyph."""
    centre = (size - 1) / 2
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = np.hypot(rows - centre, cols - centre)
    shapes = {
        "square": np.ones((size, size), bool),
        "disc": radius <= size / 2,
        "triangle": np.abs(cols - centre) <= rows / 2 + 0.5,
        "cross": np.minimum(np.abs(rows - centre), np.abs(cols - centre)) < size / 6 + 0.5,
        "ring": (radius <= size / 2) & (radius >= size / 2 - max(1.0, size / 5)),
    }
    if name not in shapes:
        raise ValueError(f"glyph: unknown glyph {name!r}; expected one of {GLYPHS}.")
    return shapes[name].astype(np.float32)


def moving_shapes(
    num_sequences: int,
    frames: int = 12,
    size: int = 32,
    objects: int = 2,
    speed: float = 2.0,
    glyph_size: int | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """Sequences of glyphs moving and bouncing off the edges.

    Args:
        num_sequences: how many sequences.
        frames: frames per sequence.
        size: frame height and width, in pixels.
        objects: glyphs per sequence.
        speed: pixels per frame.
        glyph_size: glyph height and width (default: a quarter of the frame, at least 3).
        seed: seeds everything.

    Returns:
        (num_sequences, frames, size, size, 1) float32 in [0, 1].
    """
    glyph_size = glyph_size or max(3, size // 4)
    if glyph_size > size:
        raise ValueError(f"moving_shapes: glyph_size {glyph_size} exceeds the frame size {size}.")
    rng = np.random.default_rng(seed)
    video = np.zeros((num_sequences, frames, size, size, 1), np.float32)
    limit = size - glyph_size
    for n in range(num_sequences):
        for _ in range(objects):
            pattern = glyph(GLYPHS[rng.integers(len(GLYPHS))], glyph_size)
            brightness = rng.uniform(0.6, 1.0)
            position = rng.uniform(0, limit, 2)
            angle = rng.uniform(0, 2 * np.pi)
            velocity = speed * np.array([np.sin(angle), np.cos(angle)])
            for t in range(frames):
                row, col = np.rint(position).astype(int)
                window = video[n, t, row : row + glyph_size, col : col + glyph_size, 0]
                np.maximum(window, brightness * pattern, out=window)
                position += velocity
                for axis in range(2):  # reflect off the edges
                    if position[axis] < 0 or position[axis] > limit:
                        velocity[axis] = -velocity[axis]
                        position[axis] = np.clip(position[axis], 0, limit) * 2 - position[axis]
                        position[axis] = np.clip(position[axis], 0, limit)
    return video
