# The pinned moto (and pyarrow, boto3) venv that s3.sh and emr.sh share; sourced after lib.sh.
MOTO_VERSION=5.2.5
PYARROW_VERSION=21.0.0
VENV="$STREAMCTL_CACHE/venv-moto-$MOTO_VERSION"

# Installs the venv once (callers hold their service's lock; the venv has its own).
install_moto() {
  [ -f "$VENV/.installed" ] && return 0
  exec 8>"$RUN_DIR/venv-moto.lock"
  flock 8
  if [ ! -f "$VENV/.installed" ]; then
    echo "installing moto[server]==$MOTO_VERSION and pyarrow==$PYARROW_VERSION into $VENV…" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "pyarrow==$PYARROW_VERSION" >&2
    touch "$VENV/.installed"
  fi
  exec 8>&-
}
