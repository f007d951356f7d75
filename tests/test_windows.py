"""The window gather (``planes.Windows``) and its adjoint against the loop convolution in
``reference.py``, on both of its paths: shifts of flattened images (stride 1, output the
input's size) and the padded copy (every other geometry)."""

import itertools

import numpy as np
import pytest

from convlstm.functional.planes import Windows
from convlstm.functional.windows import resolve_pads

from reference import conv_backward_reference, conv_reference

C, B, F = 2, 3, 4


def _geometries():
    """(spatial, window, stride, padding, dilation): images smaller than the window, even and
    odd windows, dilations, for one, two and three spatial axes."""
    for rank, sizes in ((1, (1, 2, 7)), (2, (1, 3, 5)), (3, (2, 3))):
        for size, k, d in itertools.product(sizes, (1, 2, 3, 4), (1, 2)):
            spatial = (size,) * rank if rank != 2 else (size, size + 1)
            yield spatial, (k,) * rank, (1,) * rank, "same", (d,) * rank
        yield (5,) * rank, (3,) * rank, (2,) * rank, "same", (1,) * rank
        yield (5,) * rank, (3,) * rank, (1,) * rank, "valid", (1,) * rank


@pytest.mark.parametrize("geometry", list(_geometries()), ids=str)
@pytest.mark.parametrize("masked", [False, True])
def test_columns_and_scatter_against_reference(geometry, masked):
    spatial, window, stride, padding, dilation = geometry
    rng = np.random.default_rng(7)
    pads = resolve_pads(padding, spatial, window, stride, dilation)
    windows = Windows((C, B, *spatial), window, stride, pads, dilation, np.dtype(np.float64))
    expect_shifts = padding == "same" and all(s == 1 for s in stride)
    assert (windows.shifts is not None) == expect_shifts

    x = rng.normal(size=(B, *spatial, C))  # channels-last: the planes below are not contiguous
    mask = rng.random((C, B, *spatial)) < 0.7 if masked else None
    kernel = rng.normal(size=(*window, C, F))
    planes = np.moveaxis(x, -1, 0)  # (C, B, *spatial)
    columns = windows.columns(planes, mask)  # (prod(window)*C, B*pixels)
    out = (kernel.reshape(-1, F).T @ columns).reshape(F, B, *windows.out_sizes)
    source = x if mask is None else x * np.moveaxis(mask, 0, -1)
    expected = conv_reference(source, kernel, None, stride, pads, dilation)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), expected, rtol=1e-12, atol=1e-12)

    d_out = rng.normal(size=expected.shape)
    d_columns = kernel.reshape(-1, F) @ np.moveaxis(d_out, -1, 0).reshape(F, -1)
    d_x = windows.scatter(d_columns)
    expected_d_x, _ = conv_backward_reference(source, kernel, d_out, stride, pads, dilation)
    np.testing.assert_allclose(np.moveaxis(d_x, 0, -1), expected_d_x, rtol=1e-12, atol=1e-12)


def test_contiguous_planes_are_read_in_place_and_a_second_call_overwrites():
    rng = np.random.default_rng(3)
    spatial, window = (4, 5), (3, 3)
    pads = resolve_pads("same", spatial, window, (1, 1), (1, 1))
    windows = Windows((C, B, *spatial), window, (1, 1), pads, (1, 1), np.dtype(np.float32))
    kernel = rng.normal(size=(*window, C, F)).astype(np.float32)
    for _ in range(2):
        x = rng.normal(size=(C, B, *spatial)).astype(np.float32)  # contiguous images
        columns = windows.columns(x)
        out = (kernel.reshape(-1, F).T @ columns).reshape(F, B, *spatial)
        expected = conv_reference(np.moveaxis(x, 0, -1), kernel, None, (1, 1), pads)
        np.testing.assert_allclose(np.moveaxis(out, 0, -1), expected, rtol=1e-5, atol=1e-5)
    assert windows.source is None  # no staging copy was needed


def test_a_given_buffer_gets_zero_edges_once_and_every_call_gathers_anew():
    """The shift gather never writes the outputs whose windows fall above or below the image:
    Windows zeroes them once, in a buffer it is given too (here full of NaN)."""
    rng = np.random.default_rng(5)
    spatial, window = (4, 5), (3, 3)
    pads = resolve_pads("same", spatial, window, (1, 1), (1, 1))
    buffer = np.full((9 * C, B * 20), np.nan, np.float32)
    windows = Windows((C, B, *spatial), window, (1, 1), pads, (1, 1), np.dtype(np.float32),
                      buffer)
    kernel = rng.normal(size=(*window, C, F)).astype(np.float32)
    for _ in range(2):
        x = rng.normal(size=(B, *spatial, C)).astype(np.float32)
        columns = windows.columns(np.moveaxis(x, -1, 0))
        assert np.shares_memory(columns, buffer)
        out = (kernel.reshape(-1, F).T @ columns).reshape(F, B, *spatial)
        expected = conv_reference(x, kernel, None, (1, 1), pads)
        np.testing.assert_allclose(np.moveaxis(out, 0, -1), expected, rtol=1e-5, atol=1e-5)
