#!/usr/bin/env bash
# Vendors hls.js for the gateway's player page (node/src/http/player.rs): the light build
# (dist/hls.light.min.js: no subtitles, alternate audio or DRM, which the player does not use)
# and its license, from the npm package at the pinned version, verified against the registry's
# integrity hash. `make update-hls-js` runs it; HLS_JS_VERSION=x.y.z picks another version
# (then update HLS_JS_VERSION in node/src/http/player.rs, whose unit test checks the two agree).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${HLS_JS_VERSION:-1.6.19}
OUT=node/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "update-hls-js: fetching hls.js@$VERSION from npm"
tarball=$(cd "$tmp" && npm pack "hls.js@$VERSION" --silent)
want=$(npm view "hls.js@$VERSION" dist.integrity)
got="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
if [ "$got" != "$want" ]; then
  echo "update-hls-js: $tarball: integrity $got, the registry says $want" >&2
  exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp" package/dist/hls.light.min.js package/LICENSE
cp "$tmp/package/dist/hls.light.min.js" "$OUT/hls.light.min.js"
cp "$tmp/package/LICENSE" "$OUT/hls.js.LICENSE"
echo "update-hls-js: $OUT/hls.light.min.js ($(wc -c < "$OUT/hls.light.min.js") bytes, hls.js $VERSION)"
