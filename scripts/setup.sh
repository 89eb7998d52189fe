#!/usr/bin/env bash
# Installs what vidloader needs to build and test on Debian or Ubuntu, and only what is missing:
#   - the FFmpeg CLI (tests make their fixtures with it) and FFmpeg's development files (libav*-dev),
#   - clang/libclang and pkg-config (ffmpeg-sys-next runs bindgen),
#   - PyTorch 2.11.0, whose libtorch tch 0.24 links against: an existing python3 with torch 2.11.0 is used as is,
#     otherwise it is installed into .venv/ in this checkout.
# Then links .libtorch to that torch package; .cargo/config.toml points the build at it, so no environment
# variable is needed. Safe to run again: a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v clang >/dev/null 2>&1 || missing+=(clang)
for pkg in libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

torch_dir() { # prints the torch package directory of python "$1" if it has torch $TORCH_VERSION
  "$1" - <<PY 2>/dev/null
import os, torch
assert torch.__version__.split("+")[0] == "$TORCH_VERSION"
print(os.path.dirname(torch.__file__))
PY
}

dir=""
if [ -x .venv/bin/python ]; then dir=$(torch_dir .venv/bin/python || true); fi
if [ -z "$dir" ]; then dir=$(torch_dir python3 || true); fi
if [ -z "$dir" ]; then
  echo "setup: installing torch==$TORCH_VERSION into .venv (about 5 GB with its CUDA libraries)"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
  dir=$(torch_dir .venv/bin/python)
fi
ln -sfn "$dir" .libtorch
echo "setup: ready (libtorch: $dir)"
