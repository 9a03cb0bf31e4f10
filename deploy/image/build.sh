#!/bin/sh
# The image's build steps, outside the Dockerfile so that deploy/image/check.sh runs exactly them
# without a container runtime. POSIX sh; needs node and npm (node 20, as the image's stages).
#
#   build.sh build SRC OUT   in SRC: `npm ci` (dev dependencies; its `prepare` script runs tsc and
#                            fills SRC/dist). Then OUT (must not exist, or be empty) gets the files
#                            package.json `files` publishes (bin/, the runtime dist folders but not
#                            dist/test nor source maps, demo/manifests; npm adds package.json and
#                            README.md) taken with `npm pack`, plus package-lock.json; and in OUT
#                            `npm ci --omit=dev --ignore-scripts` (production dependencies only; no
#                            `prepare`, there is no tsc there).
#   build.sh link OUT BINDIR BINDIR/l7guard -> OUT/bin/l7guard.js: `l7guard` on PATH, as npm links
#                            a package's bin (node follows the link, so bin/ finds ../dist).
#
# The Dockerfile RUNs `build` in its node:20-bookworm stage (SRC=/src, OUT=/out) and `link` in the
# node:20-slim stage (OUT=/opt/l7guard, BINDIR=/usr/local/bin).
set -eu

usage() {
  echo "usage: build.sh build SRC OUT | build.sh link OUT BINDIR" >&2
  exit 2
}

abspath() {
  (cd "$1" && pwd -P)
}

build() {
  src=$(abspath "$1")
  mkdir -p "$2"
  out=$(abspath "$2")
  if [ -n "$(ls -A "$out")" ]; then
    echo "build.sh: $out is not empty" >&2
    exit 1
  fi
  case "$out/" in
    "$src"/*) echo "build.sh: OUT must not be inside SRC (npm pack would see it)" >&2; exit 1 ;;
  esac

  echo "build.sh: npm ci in $src (dev dependencies; prepare runs tsc)"
  (cd "$src" && npm ci --no-audit --no-fund)

  echo "build.sh: the published files (package.json \"files\") into $out"
  pack=$(mktemp -d)
  (cd "$src" && npm pack --ignore-scripts --silent --pack-destination "$pack" >/dev/null)
  set -- "$pack"/*.tgz
  if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "build.sh: npm pack made no single tarball in $pack" >&2
    exit 1
  fi
  # npm tarballs hold everything under package/.
  tar -xzf "$1" -C "$out" --strip-components=1 --no-same-owner
  rm -rf "$pack"
  cp "$src/package-lock.json" "$out/package-lock.json"
  chmod 0755 "$out/bin/l7guard.js"

  echo "build.sh: npm ci --omit=dev in $out"
  (cd "$out" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
}

link() {
  out=$(abspath "$1")
  mkdir -p "$2"
  ln -sf "$out/bin/l7guard.js" "$2/l7guard"
}

[ "$#" -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  build) [ "$#" -eq 2 ] || usage; build "$1" "$2" ;;
  link) [ "$#" -eq 2 ] || usage; link "$1" "$2" ;;
  *) usage ;;
esac
