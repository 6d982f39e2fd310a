#!/bin/bash
# Install what the demo and the tests need: system packages (memcached)
# and this project in editable mode with its test extras, into the current
# Python (${PYTHON:-python3}). Safe to run again: it only does what is
# missing.
#
# CLOUD_SHUNT_BENCH=1 also installs what the benchmarks need (tests/bench):
# wrk (apt) and the "bench" extras (matplotlib, py-spy). The tests never
# need them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}

say() { echo "bootstrap: $*"; }

# -- system packages (Debian/Ubuntu) -------------------------------------
BENCH=${CLOUD_SHUNT_BENCH:-0}
missing=()
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] \
    || missing+=(memcached)
if [ "$BENCH" = 1 ]; then
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "please install: ${missing[*]} (see bindep.txt)" >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
        [ -t 0 ] || SUDO+=(-n)
    else
        say "need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# -- the project -----------------------------------------------------------
# Reinstall only when the editable install of this checkout is missing,
# setup.py changed since, or a requirement is not satisfied.
if "$PYTHON" - "$REPO" <<'PY'
import importlib.metadata as md
import os
import sys

repo = sys.argv[1]
# look at what is installed, not at the checkout's own egg-info
sys.path[:] = [p for p in sys.path
               if p not in ('', '.', repo) and os.path.abspath(p) != repo]
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
try:
    dist = md.distribution('swift-cloud-shunt')
    import shunt
except (md.PackageNotFoundError, ImportError):
    sys.exit(1)
if os.path.dirname(os.path.dirname(os.path.abspath(shunt.__file__))) \
        != repo:
    sys.exit(1)
meta = [os.path.join(str(getattr(dist, '_path', '')), name)
        for name in ('METADATA', 'PKG-INFO')]
installed = max([os.path.getmtime(m) for m in meta if os.path.exists(m)],
                default=0)
if os.path.getmtime(os.path.join(repo, 'setup.py')) > installed:
    sys.exit(1)
for line in dist.requires or ():
    req = Requirement(line)
    if req.marker and not req.marker.evaluate({'extra': 'test'}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if req.specifier and not req.specifier.contains(version,
                                                    prereleases=True):
        sys.exit(1)
sys.exit(0)
PY
then
    say "swift-cloud-shunt already installed (editable) with test extras"
else
    say "pip install -e '.[test]'"
    "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
fi
if [ "$BENCH" = 1 ]; then
    if "$PYTHON" -c 'import matplotlib' 2>/dev/null \
            && command -v py-spy >/dev/null 2>&1; then
        say "bench extras already installed"
    else
        say "pip install -e '.[test,bench]'"
        "$PYTHON" -m pip install -q --disable-pip-version-check \
            -e '.[test,bench]'
    fi
fi
say "ready"
