#!/usr/bin/env python3
"""Derives models/ssd_mobilenet_v2_coco_raw.onnx from models/ssd_mobilenet_v2_coco.onnx.

The converted model ends in TFLite's detection post-processing: box decoding
for 1917 anchors, a sigmoid over 1917 x 91 class logits, NMS per class and a
top 20, all for a batch of one. This script cuts the graph before that part
and gives it a batch dimension, so xueliang can run several cameras' pictures
in one call and do the post-processing itself (thresholding first, which makes
it cheap). The network and its weights are unchanged.

The raw model has one input and three outputs:
  normalized_input_image_tensor  uint8 [batch, 300, 300, 3] RGB (as before)
  box_encodings   float32 [batch, 1917, 4]  (ty, tx, th, tw), already divided
                  by the box coder's scales (10, 10, 5, 5)
  class_logits    float32 [batch, 1917, 91]  class 0 is the background
  anchors         float32 [1917, 4]  (ycenter, xcenter, height, width), normalised

What the cut-off part did, and xueliang now does (crates/detect/src/ssd_raw.rs):
  ycenter = ty * ha + ya   xcenter = tx * wa + xa
  h = exp(th) * ha         w = exp(tw) * wa
  score = sigmoid(logit) for classes 1..90 (label id = class - 1)
  NMS per class at IoU 0.6, at most 20 boxes per class, then the best 20 in all.
This script prints those constants as read from the graph, so a change of
source model cannot go unnoticed.

Deterministic: the same input gives a byte-identical output (checked against
the sha256 in ssd_mobilenet_v2_coco.toml, the default manifest). Needs onnx==1.23.2 and numpy;
onnxruntime==1.32.0 to verify. Not run by CI: the result is committed.

  python3 models/cut-postprocess.py [--check]
"""

import hashlib
import pathlib
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "ssd_mobilenet_v2_coco.onnx"
TARGET = HERE / "ssd_mobilenet_v2_coco_raw.onnx"

INPUT = "normalized_input_image_tensor"
# Tensor names in the converted graph (tf2onnx 1.17 from the TFLite file).
LOGITS = "concat_dequant"  # DequantizeLinear of the class predictions
ENCODINGS = "Div__1035:0"  # box encodings divided by the box coder's scales
ANCHORS = "anchors"  # uint8 [1917, 4] initializer
ANCHOR_SCALE = "scale__85"
ANCHOR_ZERO = "zero_point__413"
# Constants of the cut-off post-processing, checked below.
EXPECTED = {
    "scale_const__1034": [10.0, 10.0, 5.0, 5.0],
    "iou_threshold__1061": 0.6,
    "max_boxes_per_class__1063": 20,
    "const_k__1095": [20],
    "const_starts__1030": [-90],
}


def initializers(graph):
    return {i.name: numpy_helper.to_array(i) for i in graph.initializer}


def check_constants(graph):
    values = initializers(graph)
    for name, want in EXPECTED.items():
        have = values[name].tolist()
        if not np.allclose(have, want):
            sys.exit(f"{name} is {have}, expected {want}: the post-processing changed")
        print(f"  {name} = {have}")


def cut(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    extracted = onnx.utils.Extractor(inferred).extract_model([INPUT], [LOGITS, ENCODINGS])
    graph = extracted.graph
    # Anchors: dequantised once in the graph (a constant ORT folds). The
    # initializer is renamed so that the output can be called `anchors`.
    present = {i.name for i in graph.initializer}
    for name in (ANCHORS, ANCHOR_SCALE, ANCHOR_ZERO):
        if name in present:
            continue
        init = onnx.TensorProto()
        init.CopyFrom(next(i for i in model.graph.initializer if i.name == name))
        if name == ANCHORS:
            init.name = "anchors_quantized"
        graph.initializer.append(init)
    graph.node.extend(
        [
            helper.make_node(
                "DequantizeLinear",
                ["anchors_quantized", ANCHOR_SCALE, ANCHOR_ZERO],
                ["anchors"],
                name="anchors_dequantize",
            ),
            helper.make_node("Identity", [LOGITS], ["class_logits"], name="class_logits_output"),
            helper.make_node("Identity", [ENCODINGS], ["box_encodings"], name="box_encodings_output"),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("box_encodings", onnx.TensorProto.FLOAT, ["batch", 1917, 4]),
            helper.make_tensor_value_info("class_logits", onnx.TensorProto.FLOAT, ["batch", 1917, 91]),
            helper.make_tensor_value_info("anchors", onnx.TensorProto.FLOAT, [1917, 4]),
        ]
    )

    # A batch dimension: the input's first dim becomes symbolic, and each
    # Reshape whose target shape starts with a literal 1 copies the batch (0).
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    reshape_shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    users = {}
    for node in graph.node:
        for i in node.input:
            users.setdefault(i, []).append(node.op_type)
    for init in graph.initializer:
        if init.name not in reshape_shapes:
            continue
        if set(users[init.name]) != {"Reshape"}:
            sys.exit(f"{init.name} is a Reshape shape also used by {users[init.name]}")
        shape = numpy_helper.to_array(init).copy()
        if shape.ndim == 1 and len(shape) >= 2 and shape[0] == 1:
            shape[0] = 0
            init.CopyFrom(numpy_helper.from_array(shape, init.name))
    del graph.value_info[:]
    extracted.graph.doc_string = "ssd_mobilenet_v2_coco without its post-processing, with a batch dimension (models/cut-postprocess.py)"
    onnx.checker.check_model(extracted)
    return extracted


def main():
    model = onnx.load(str(SOURCE))
    print(f"source {SOURCE.name}, post-processing constants:")
    check_constants(model.graph)
    raw = cut(model)
    data = raw.SerializeToString()
    digest = hashlib.sha256(data).hexdigest()
    if "--check" in sys.argv:
        committed = hashlib.sha256(TARGET.read_bytes()).hexdigest()
        if committed != digest:
            sys.exit(f"{TARGET.name}: committed {committed}, derived {digest}")
        print(f"{TARGET.name} matches ({digest})")
        return
    TARGET.write_bytes(data)
    print(f"wrote {TARGET.name}: {len(data)} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
