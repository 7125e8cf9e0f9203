#!/bin/sh
# Installs TF.js 4.22's WebGL and WebGPU backends (@tensorflow/tfjs-core,
# @tensorflow/tfjs-backend-webgl and @tensorflow/tfjs-backend-webgpu, pinned by
# package-lock.json) into benchmarks/tfjs/node_modules, for
# `python benchmarks/bench.py --tfjs` and `--webgpu --tfjs-webgpu`.  gpuconv itself never
# needs them.  Running it again reinstalls the same versions (npm ci), so it is idempotent.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
    echo "benchmarks/tfjs/setup.sh: npm is missing (Debian: apt-get install --no-install-recommends nodejs npm)" >&2
    exit 3
fi
npm ci --no-audit --no-fund
for package in tfjs-core tfjs-backend-webgl tfjs-backend-webgpu; do
    echo "benchmarks/tfjs/setup.sh: @tensorflow/$package $(node -p "require('./node_modules/@tensorflow/$package/package.json').version")"
done
echo "benchmarks/tfjs/setup.sh: installed; run: python benchmarks/bench.py --tfjs, or --webgpu --tfjs-webgpu"
