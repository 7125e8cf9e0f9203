#!/bin/sh
# Installs TF.js 4.22's WebGL backend (@tensorflow/tfjs-core and @tensorflow/tfjs-backend-webgl,
# pinned by package-lock.json) into benchmarks/tfjs/node_modules, for
# `python benchmarks/bench.py --tfjs`.  gpuconv itself never needs them.  Running it again
# reinstalls the same versions.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
    echo "benchmarks/tfjs/setup.sh: npm is missing (Debian: apt-get install --no-install-recommends nodejs npm)" >&2
    exit 3
fi
npm ci --no-audit --no-fund
echo "benchmarks/tfjs/setup.sh: TF.js $(node -p "require('./node_modules/@tensorflow/tfjs-core/package.json').version") installed; run: python benchmarks/bench.py --tfjs"
