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


def test_choose_fold_spreads_small_outputs_over_raster_tiles():
    from gpuconv.layout import choose_fold, raster_tiles

    assert choose_fold(64, 64, 16384) == 4             # one 64x64 tile -> 16 rows x 256 cols: 4 tiles
    assert raster_tiles(16, 256) == 4
    assert choose_fold(112, 112, 16384) == 1           # already 4 tiles
    assert choose_fold(1, 10, 16384) == 1              # one row cannot be folded
    assert choose_fold(64, 64, 128) == 2               # never wider than the texture limit


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_split_layout_assemble_unfolds_the_bands(fold):
    from gpuconv.layout import SplitImageLayout

    layout = SplitImageLayout(batch=2, height=3, width=7, channels=5, count=4, fold=fold)
    full = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)  # 2 groups of 4, 8 channels
    parts = []
    for j in range(4):
        unfolded = np.zeros((layout.rows * fold, layout.unfolded_cols * 4), np.float32)
        unfolded[:6] = full[:, :, j::4, :].reshape(6, -1)
        parts.append(unfolded.reshape(fold, layout.rows, -1).transpose(1, 0, 2).reshape(layout.rows, -1))
    np.testing.assert_array_equal(layout.assemble(parts), full[:, :, :7, :5])
    np.testing.assert_array_equal(layout.assemble(parts, "NCHW"), full[:, :, :7, :5].transpose(0, 3, 1, 2))
