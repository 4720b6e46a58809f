"""Image models for the upscale and image-to-image tests, made with the `onnx` package.

upscale_x2_nearest.onnx  image f32[1,3,H,W] -> upscaled [1,3,2H,2W]: nearest x2 (known pixels)
upscale_x2_blur.onnx     the same, then a 3x3 blur: a tile border without overlap shows
upscale_x3_fixed.onnx    image f32[1,3,64,64] -> [1,3,192,192]: a fixed-size input (tiles padded)
invert.onnx              image f32[1,3,H,W] -> 1 - image (an image-to-image model, RGB out)
luma_mask.onnx           image f32[1,3,H,W] -> mask [1,1,H,W] (a matting/depth-like model)
mismatch_int_input.onnx  ids i64[1,8] -> f32: no image input; every image pipeline refuses it
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def save(graph, path):
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def upscale(name, kernel, scale=2, fixed=None):
    k = np.zeros((3, 1, 3, 3), np.float32)
    k[:, 0] = kernel
    dims_in = [1, 3, fixed, fixed] if fixed else [1, 3, "H", "W"]
    dims_out = [1, 3, fixed * scale, fixed * scale] if fixed else [1, 3, "H2", "W2"]
    g = h.make_graph(
        [
            h.make_node("Resize", ["image", "", "scales"], ["r"], mode="nearest"),
            h.make_node("Conv", ["r", "W", "B"], ["c"], group=3, pads=[1, 1, 1, 1]),
            h.make_node("Clip", ["c", "lo", "hi"], ["upscaled"]),
        ],
        name,
        [h.make_tensor_value_info("image", T.FLOAT, dims_in)],
        [h.make_tensor_value_info("upscaled", T.FLOAT, dims_out)],
        initializer=[
            nh.from_array(np.array([1, 1, scale, scale], np.float32), "scales"),
            nh.from_array(k, "W"),
            nh.from_array(np.zeros(3, np.float32), "B"),
            nh.from_array(np.array(0, np.float32), "lo"),
            nh.from_array(np.array(1, np.float32), "hi"),
        ],
    )
    save(g, f"{out}/{name}.onnx")


def invert():
    g = h.make_graph(
        [h.make_node("Sub", ["one", "image"], ["output"])],
        "invert",
        [h.make_tensor_value_info("image", T.FLOAT, [1, 3, "H", "W"])],
        [h.make_tensor_value_info("output", T.FLOAT, [1, 3, "H", "W"])],
        initializer=[nh.from_array(np.array(1, np.float32), "one")],
    )
    save(g, f"{out}/invert.onnx")


def luma_mask():
    w = np.array([[[[0.299]], [[0.587]], [[0.114]]]], np.float32)  # [1,3,1,1]
    g = h.make_graph(
        [h.make_node("Conv", ["image", "W"], ["mask"])],
        "luma_mask",
        [h.make_tensor_value_info("image", T.FLOAT, [1, 3, "H", "W"])],
        [h.make_tensor_value_info("mask", T.FLOAT, [1, 1, "H", "W"])],
        initializer=[nh.from_array(w, "W")],
    )
    save(g, f"{out}/luma_mask.onnx")


def mismatch():
    g = h.make_graph(
        [h.make_node("Cast", ["ids"], ["out"], to=T.FLOAT)],
        "mismatch",
        [h.make_tensor_value_info("ids", T.INT64, [1, 8])],
        [h.make_tensor_value_info("out", T.FLOAT, [1, 8])],
    )
    save(g, f"{out}/mismatch_int_input.onnx")


out = sys.argv[1]
identity = np.zeros((3, 3), np.float32)
identity[1, 1] = 1
blur = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16
upscale("upscale_x2_nearest", identity)
upscale("upscale_x2_blur", blur)
upscale("upscale_x3_fixed", blur, scale=3, fixed=64)
invert()
luma_mask()
mismatch()
