"""Logical shape -> texture shape, and the round trip through packing."""

import numpy as np
import pytest

from gpuconv.layout import TextureTooLargeError, texture_layout


def test_innermost_dimension_across_rows():
    layout = texture_layout((2, 5, 7, 3))
    assert (layout.rows, layout.cols, layout.split) == (70, 3, 3)
    assert layout.row_terms == (("b", 35), ("r", 7), ("c", 1))
    assert layout.col_terms == (("d", 1),)


def test_size_one_dimensions_are_squeezed_from_samplers():
    layout = texture_layout((1, 5, 1, 3))
    assert layout.row_terms == (("r", 1),)
    assert [kind for _, _, kind in layout.row_decomposition] == ["zero", "rest", "zero"]


def test_other_splits_then_wrapping_when_too_large():
    layout = texture_layout((8, 10, 3), max_texture_size=64)   # 80 rows of 3 is too tall
    assert (layout.rows, layout.cols, layout.split) == (8, 30, 1)
    layout = texture_layout((3, 50, 50), max_texture_size=100)
    assert layout.wrapped and layout.rows * layout.cols >= 7500
    assert layout.rows <= 100 and layout.cols <= 100
    with pytest.raises(TextureTooLargeError, match="does not fit in one texture"):
        texture_layout((100, 100), max_texture_size=64)


@pytest.mark.parametrize("shape, limit", [((2, 3, 4, 5), 16384), ((3, 50, 50), 100), ((7,), 4)])
def test_pack_unpack_round_trip(shape, limit):
    layout = texture_layout(shape, limit)
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    texels = layout.pack(data)
    assert texels.shape == (layout.rows, layout.cols)
    np.testing.assert_array_equal(layout.unpack(texels), data)
