#!/usr/bin/env bash
# Installs the third-party msgpack-rpc peers of the interop tests (tests/interop/) into one cache
# directory, pinned, and is idempotent: a peer whose pins (or, for Go, whose source) did not change
# since it was installed is left alone, so a second run takes about a second.
#
#   bash tests/interop/install_peers.sh            # into ${ASYNCRPC_INTEROP_CACHE:-$HOME/.cache/asyncrpc-interop}
#
# What it needs: python3 (with venv), go with Debian's golang-github-ugorji-go-codec-dev (GOPATH
# /usr/share/gocode: built offline, no module download), and node with npm. A peer whose tool is
# missing is reported and skipped here; the tests then skip it locally and fail it in CI.
#
# Layout of the cache (what tests/interop/peers.py looks for):
#   go/peer                     tests/interop/go/peer.go built; go/peer.sha256 the source it came from
#   node/node_modules/          npm ci of tests/interop/node/package-lock.json; node/installed.json once done
#   venv/<peer>/bin/python      one venv per Python peer, from tests/interop/python/requirements-<peer>.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ASYNCRPC_INTEROP_CACHE:-$HOME/.cache/asyncrpc-interop}"
mkdir -p "$cache"
missing=0

# Go: net/rpc with ugorji's codec, from Debian's source package (GO111MODULE=off: no network).
if command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/github.com/ugorji/go/codec ]; then
    source_sum="$(sha256sum "$here/go/peer.go" | cut -d' ' -f1)"
    if [ -x "$cache/go/peer" ] && [ "$(cat "$cache/go/peer.sha256" 2>/dev/null)" = "$source_sum" ]; then
        echo "go peer: up to date"
    else
        echo "go peer: building"
        mkdir -p "$cache/go"
        GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$cache/gocache" GOFLAGS= \
            go build -o "$cache/go/peer.tmp" "$here/go/peer.go"
        mv "$cache/go/peer.tmp" "$cache/go/peer"
        echo "$source_sum" >"$cache/go/peer.sha256"
    fi
else
    echo "go peer: SKIPPED (needs go and golang-github-ugorji-go-codec-dev)" >&2
    missing=1
fi

# Node: npm ci from the committed lock file (every transitive version pinned).
if command -v npm >/dev/null 2>&1; then
    # installed.json: a copy of the lock file, written once npm ci succeeded.
    if cmp -s "$here/node/package-lock.json" "$cache/node/installed.json"; then
        echo "node peers: up to date"
    else
        echo "node peers: installing"
        rm -rf "$cache/node"
        mkdir -p "$cache/node"
        cp "$here/node/package.json" "$here/node/package-lock.json" "$cache/node/"
        npm ci --prefix "$cache/node" --no-audit --no-fund --loglevel=error
        cp "$here/node/package-lock.json" "$cache/node/installed.json"
    fi
else
    echo "node peers: SKIPPED (needs node and npm)" >&2
    missing=1
fi

# Python: a venv per peer (msgpack-rpc-python's msgpack-python would replace msgpack in a shared
# one). The requirements file copied into the venv marks it complete and says what it holds.
for requirements in "$here"/python/requirements-*.txt; do
    name="$(basename "$requirements" .txt)"
    name="${name#requirements-}"
    venv="$cache/venv/$name"
    if cmp -s "$requirements" "$venv/requirements.txt"; then
        echo "python peer $name: up to date"
        continue
    fi
    echo "python peer $name: installing"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
done

echo "interop peers in $cache"
exit "$missing"
