"""The spatial axes of a convolution (2-D or 3-D) as the rank-generic WGSL templates take them
(``shaders/wgsl/axes.wgsl``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from ..geometry import Conv2DGeometry, Conv3DGeometry


@dataclass(frozen=True)
class SpatialAxis:
    """One spatial axis of a convolution, as the templates need it."""

    name: str       # "F" (depth), "R" (rows) or "C" (columns)
    filter: int
    input: int
    output: int
    stride: int
    dilation: int
    pad: int        # before


def spatial_axes(g: Conv2DGeometry | Conv3DGeometry) -> Tuple[SpatialAxis, ...]:
    """``g``'s axes in order: rows and columns ("R", "C"), after the depth ("F") in 3-D."""
    names = "FRC"[3 - len(g.filter_spatial):]
    return tuple(SpatialAxis(name, f, i, o, s, d, pad)
                 for name, f, i, o, s, d, (pad, _) in zip(names, g.filter_spatial, g.in_spatial, g.out_spatial,
                                                          g.strides, g.dilations, g.pads))
