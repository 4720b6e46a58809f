"""Stand-in safety models for the nsfw tests: NudeNet's I/O (YOLOv8 at 320), made with `onnx`.

Each takes images f32[1,3,320,320] and answers output0 f32[1,22,2100] (cx, cy, w, h and 18 class
scores per anchor, 2100 anchors at 320: 40² + 20² + 10²), zero everywhere but at one anchor:

safety_exposed.onnx  class 3 (FEMALE_BREAST_EXPOSED) scores 0.9 at anchor 1234: nsfw
safety_covered.onnx  class 16 (FEMALE_BREAST_COVERED) scores 0.9 there: not nsfw
safety_faint.onnx    class 3 scores 0.2 there, under the threshold: not nsfw
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

ANCHORS = 2100
ANCHOR = 1234


def safety(name, class_id, score):
    c = np.zeros((1, 4 + 18, ANCHORS), np.float32)
    c[0, 0:4, ANCHOR] = [160, 160, 40, 40]
    c[0, 4 + class_id, ANCHOR] = score
    g = h.make_graph(
        [
            # 0 × the image's sum + the constant: the answer depends on the input only nominally.
            h.make_node("ReduceSum", ["images"], ["sum"], keepdims=0),
            h.make_node("Mul", ["sum", "zero"], ["nothing"]),
            h.make_node("Add", ["nothing", "scores"], ["output0"]),
        ],
        name,
        [h.make_tensor_value_info("images", T.FLOAT, [1, 3, 320, 320])],
        [h.make_tensor_value_info("output0", T.FLOAT, [1, 4 + 18, ANCHORS])],
        initializer=[nh.from_array(np.array(0, np.float32), "zero"), nh.from_array(c, "scores")],
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, f"{out}/{name}.onnx")


out = sys.argv[1]
safety("safety_exposed", 3, 0.9)
safety("safety_covered", 16, 0.9)
safety("safety_faint", 3, 0.2)
