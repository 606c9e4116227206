#!/usr/bin/env bash
# Fetches onnxruntime's shared library from its PyPI wheel (the library ships
# inside it, at onnxruntime/capi/, and needs only libc and libstdc++) into DIR.
#   scripts/fetch-onnxruntime.sh VERSION DIR
# Needs python3 with pip (`pip download` only fetches the wheel; nothing is
# installed). scripts/setup.sh calls it for .local/onnxruntime/, and
# deploy/Containerfile for the image. x86_64 Linux only.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 VERSION DIR" >&2; exit 2; }
version=$1
out=$2
py=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
  "onnxruntime==$version" -d "$tmp"
mkdir -p "$out"
"$py" - "$tmp" "$out" <<'PY'
import glob, sys, zipfile, os
tmp, out = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("onnxruntime/capi/libonnxruntime.so"):
            target = os.path.join(out, os.path.basename(n))
            with z.open(n) as src, open(target, "wb") as dst:
                dst.write(src.read())
            print(target)
PY
[ -f "$out/libonnxruntime.so.$version" ] || {
  echo "the wheel had no libonnxruntime.so.$version:" >&2
  ls "$out" >&2
  exit 1
}
