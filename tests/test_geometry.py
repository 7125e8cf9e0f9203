"""Geometry in TF / TF.js semantics: output sizes, the four pads, argument forms."""

import pytest

from gpuconv.geometry import conv2d_geometry, normalize_hw, normalize_padding


def geom(x=(1, 7, 7, 3), f=(3, 3, 3, 2), **kw):
    return conv2d_geometry(x, f, **kw)


@pytest.mark.parametrize("size, filt, stride, out, before, after", [
    (7, 3, 2, 4, 1, 1),   # total pad 2, split evenly
    (8, 3, 2, 4, 0, 1),   # total pad 1: the smaller half (0) goes before, as TF does
    (5, 4, 1, 5, 1, 2),   # even filter: total 3 -> 1 before, 2 after
    (5, 1, 3, 2, 0, 0),   # 1x1 filter needs no pad
    (2, 5, 1, 2, 2, 2),
])
def test_same_padding_puts_smaller_half_before(size, filt, stride, out, before, after):
    g = geom((1, size, size, 1), (filt, filt, 1, 1), strides=stride, padding="SAME")
    assert (g.out_height, g.pad_top, g.pad_bottom) == (out, before, after)
    assert (g.out_width, g.pad_left, g.pad_right) == (out, before, after)


@pytest.mark.parametrize("size, filt, stride, dilation, out", [
    (7, 3, 1, 1, 5), (7, 3, 2, 1, 3), (8, 3, 3, 1, 2), (9, 3, 1, 3, 3), (7, 2, 1, 2, 5),
])
def test_valid_output_size(size, filt, stride, dilation, out):
    g = geom((1, size, size, 1), (filt, filt, 1, 1), strides=stride, dilations=dilation, padding="VALID")
    assert g.out_height == out and (g.pad_top, g.pad_bottom) == (0, 0)
    assert g.effective_filter_height == (filt - 1) * dilation + 1


@pytest.mark.parametrize("mode, out", [(None, 3), ("floor", 3), ("round", 4), ("ceil", 4)])
def test_int_padding_uses_dim_rounding_mode(mode, out):
    # (6 - 3 + 2) / 2 + 1 = 3.5
    g = geom((1, 6, 6, 1), (3, 3, 1, 1), strides=2, padding=1, dim_rounding_mode=mode)
    assert g.out_height == out and g.out_width == out
    assert (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (1, 1, 1, 1)


def test_ceil_rounding_window_pads_cover_the_last_window():
    g = geom((1, 5, 5, 1), (2, 2, 1, 1), strides=2, padding=1, dim_rounding_mode="ceil")
    assert g.out_height == 4
    assert g.window_pads == ((1, 2), (1, 2))


def test_explicit_padding_forms_agree():
    a = geom(padding=[[1, 2], [0, 3]])
    b = geom(padding=[[0, 0], [1, 2], [0, 3], [0, 0]])
    c = geom((1, 3, 7, 7), padding=[[0, 0], [0, 0], [1, 2], [0, 3]], data_format="NCHW")
    for g in (a, b, c):
        assert (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (1, 2, 0, 3)
        assert (g.out_height, g.out_width) == (8, 8)


def test_strides_and_dilations_forms():
    assert normalize_hw(2, "strides") == (2, 2)
    assert normalize_hw((2, 3), "strides") == (2, 3)
    assert normalize_hw([1, 2, 3, 1], "strides", "NHWC") == (2, 3)
    assert normalize_hw([1, 1, 2, 3], "strides", "NCHW") == (2, 3)


def test_nchw_shapes_and_depthwise_channels():
    g = conv2d_geometry((2, 5, 9, 8), (3, 2, 5, 3), strides=(2, 1), padding="SAME",
                        data_format="NCHW", depthwise=True)
    assert g.in_shape == (2, 5, 9, 8) and g.out_shape == (2, 15, 5, 8)
    assert g.channel_multiplier == 3 and g.out_channels == 15


def test_grouped_shapes():
    g = geom((1, 7, 7, 6), (3, 3, 2, 9), groups=3)
    assert (g.in_channels_per_group, g.out_channels_per_group) == (2, 3)
    assert g.multiply_adds == 5 * 5 * 9 * 9 * 2


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(strides=2, dilations=2, depthwise=True), ValueError,
     r"strides and dilations cannot both be greater than 1 for a depthwise or separable convolution \(TF and TF.js refuse it too"),
    (dict(strides=0), ValueError, "strides must be positive"),
    (dict(dilations=-1), ValueError, "dilations must be positive"),
    (dict(strides=1.5), TypeError, "strides must be"),
    (dict(strides=[2, 2, 2, 2]), ValueError, "strides as a 4-list"),
    (dict(padding="FULL"), ValueError, "padding must be 'SAME', 'VALID'"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(padding=1.5), ValueError, "padding must be an integer"),
    (dict(padding=[[1, -1], [0, 0]]), ValueError, "non-negative"),
    (dict(padding=[[1, 0], [0, 0], [0, 0], [0, 0]]), ValueError, "only pad the spatial"),
    (dict(padding="SAME", dim_rounding_mode="floor"), ValueError, "padding must be an integer when dim_rounding_mode"),
    (dict(padding=1, dim_rounding_mode="up"), ValueError, "dim_rounding_mode must be one of"),
    (dict(data_format="NWHC"), ValueError, "data_format must be 'NHWC' or 'NCHW'"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        geom(**kwargs)


def test_filter_larger_than_padded_input_is_refused():
    with pytest.raises(ValueError, match="does not fit in the padded input"):
        geom((1, 3, 3, 1), (5, 5, 1, 1), padding="VALID")


def test_channel_mismatch_is_refused():
    with pytest.raises(ValueError, match="must equal x's channels"):
        geom((1, 7, 7, 3), (3, 3, 4, 2))
    with pytest.raises(ValueError, match="groups .* must divide"):
        geom((1, 7, 7, 6), (3, 3, 2, 4), groups=4)


def test_padding_normalization_keeps_kind():
    assert normalize_padding("same").kind == "SAME"
    assert normalize_padding(0).kind == "NUMBER"


def test_channel_mismatch_suggests_groups_when_they_would_fit():
    with pytest.raises(ValueError, match=r"for a grouped convolution, pass groups=2\)"):
        geom((1, 7, 7, 4), (3, 3, 2, 4))
