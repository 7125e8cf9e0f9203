"""Edge detection on a real photograph: Sobel and Laplacian filters as one gpuconv.conv2d.

The photograph is scikit-image's ``camera`` sample (512x512 grey, shipped inside the
scikit-image wheel: nothing is downloaded).  The three 3x3 filters -- Sobel x, Sobel y
and the Laplacian -- are stacked into one ``[3, 3, 1, 3]`` filter, so a single draw of
one Conv2D program computes all three responses; the Sobel magnitude
``sqrt(gx**2 + gy**2)`` is then taken in NumPy.  The GPU's result is checked against
gpuconv's float64 oracle, and a PNG shows the original, the Sobel magnitude and the
Laplacian's absolute value side by side (each edge panel scaled so that its 99.5th
percentile is white).  SAME padding pads with zeros, so a bright region touching the
border (the sky) gives a thin edge along it.

Run it (after ``bash .ci/setup``, which installs the ``examples`` extra)::

    .venv/bin/python examples/edge_detection.py                 # 512x512 -> out/edges.png
    .venv/bin/python examples/edge_detection.py --small --output /tmp/edges

Exit status: 0 when the GPU agrees with the oracle to --tolerance (relative to the
output's largest magnitude), 1 when it does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import gpuconv

# Cross-correlation filters (tf.nn.conv2d does not flip the kernel); the sign of the Sobel
# responses does not matter for the magnitude.
SOBEL_X = np.array([[-1, 0, 1],
                    [-2, 0, 2],
                    [-1, 0, 1]], dtype=np.float32)
SOBEL_Y = SOBEL_X.T.copy()
LAPLACIAN = np.array([[0, 1, 0],
                      [1, -4, 1],
                      [0, 1, 0]], dtype=np.float32)


def edge_filter() -> np.ndarray:
    """The three filters as one conv2d filter ``[FH, FW, in_channels=1, out_channels=3]``."""
    return np.stack([SOBEL_X, SOBEL_Y, LAPLACIAN], axis=-1)[:, :, np.newaxis, :]


def load_photo(size: int) -> np.ndarray:
    """scikit-image's ``camera`` photograph as float32 in [0, 1], resized to ``size`` x ``size``."""
    from PIL import Image
    from skimage import data

    photo = data.camera()  # uint8 [512, 512], bundled in the wheel (skimage/data/camera.png)
    if photo.shape != (size, size):
        photo = np.asarray(Image.fromarray(photo).resize((size, size), Image.LANCZOS))
    return photo.astype(np.float32) / 255.0



def to_uint8(image: np.ndarray, percentile: float = 100.0) -> np.ndarray:
    """Scale ``image`` to 0-255 so that its ``percentile`` is white (0 stays black)."""
    peak = float(np.percentile(image, percentile))
    return np.clip(image / (peak or 1.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def side_by_side(panels, gap: int = 4) -> np.ndarray:
    """Grey uint8 panels of one height joined left to right with white gaps."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap), 255, np.uint8)
    row = []
    for i, panel in enumerate(panels):
        row += [spacer, panel] if i else [panel]
    return np.concatenate(row, axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Sobel and Laplacian edges of scikit-image's camera photograph with "
                    "gpuconv.conv2d, checked against the float64 oracle; writes a PNG.")
    parser.add_argument("--size", type=int, default=512, metavar="N",
                        help="resize the photograph to N x N first (default 512: the original)")
    parser.add_argument("--small", action="store_true", help="shorthand for --size 128 (quick)")
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="where to write edges.png (default: ./out)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted error relative to the output's largest magnitude")
    args = parser.parse_args(argv)
    size = 128 if args.small else args.size
    if size < 3:
        parser.error(f"--size must be at least 3, got {size}")

    photo = load_photo(size)
    x = photo[np.newaxis, :, :, np.newaxis]  # NHWC [1, size, size, 1]
    w = edge_filter()                         # [3, 3, 1, 3]

    start = time.perf_counter()
    y = gpuconv.conv2d(x, w, strides=1, padding="SAME")  # [1, size, size, 3], one draw
    gpu_s = time.perf_counter() - start
    expected = gpuconv.oracle.conv2d(x, w, strides=1, padding="SAME")  # float64
    error = gpuconv.oracle.relative_error(y, expected)

    gx, gy, laplacian = y[0, :, :, 0], y[0, :, :, 1], y[0, :, :, 2]
    magnitude = np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2)

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "edges.png")
    from PIL import Image
    Image.fromarray(side_by_side([to_uint8(photo), to_uint8(magnitude, 99.5),
                                 to_uint8(np.abs(laplacian), 99.5)])).save(path)

    ok = error <= args.tolerance
    print(f"edge_detection: scikit-image camera photograph, {size}x{size} grey, "
          f"x {x.shape} (NHWC) * filter {w.shape} [Sobel x, Sobel y, Laplacian], SAME")
    print(f"  GPU      {gpu_s * 1e3:.1f} ms for one conv2d on {gpuconv.get_runtime().info()['renderer']} "
          f"(first call: includes compiling the program)")
    print(f"  edges    Sobel magnitude max {magnitude.max():.3f}, mean {magnitude.mean():.3f}; "
          f"|Laplacian| max {np.abs(laplacian).max():.3f}")
    print(f"  error    GPU vs float64 oracle: {error:.2e} relative to the largest output "
          f"{np.max(np.abs(expected)):.3f} (tolerance {args.tolerance:g})")
    print(f"  wrote    {path} (original | Sobel magnitude | |Laplacian|)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
