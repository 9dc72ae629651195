#!/usr/bin/env bash
# Installs Apache Flink 1.20 (the PyPI `apache-flink` wheel, which bundles the Flink
# distribution and PyFlink) into a venv owned by this project, and prints its FLINK_HOME.
# Idempotent: a cached install answers in well under a second.
#
# usage: scripts/flink.sh            # prints FLINK_HOME (…/site-packages/pyflink)
#        scripts/flink.sh python     # prints the venv's python (which can `import pyflink`)
set -euo pipefail
VERSION=1.20.5
CACHE=${STREAMCTL_CACHE:-$HOME/.cache/streamctl}
VENV="$CACHE/venv-flink-$VERSION"
mkdir -p "$CACHE"
if [ ! -f "$VENV/.installed" ]; then
  # One installer at a time (tests run in parallel).
  exec 9>"$CACHE/.flink-install.lock"
  flock 9
  if [ ! -f "$VENV/.installed" ]; then
    echo "installing apache-flink==$VERSION into $VENV (about a minute)…" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "apache-flink==$VERSION" >&2
    command -v java >/dev/null || { echo "error: Flink needs Java 11 or 17 on PATH" >&2; exit 1; }
    touch "$VENV/.installed"
  fi
fi
case "${1:-home}" in
  python) echo "$VENV/bin/python" ;;
  home) echo "$("$VENV/bin/python" -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')" ;;
  *) echo "usage: scripts/flink.sh [home|python]" >&2; exit 2 ;;
esac
