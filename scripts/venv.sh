#!/usr/bin/env bash
# Creates .venv from requirements.txt, again only when the pins change.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.venv
stamp=$venv/.requirements.sha256
python=${PYTHON:-python3}

die() {
  echo "berth: $*" >&2
  exit 1
}

# The pins and the bytecode hook installed below.
want=$(cat "$top/requirements.txt" "$top/images/host/berth_lab_pycache.py" "$top/scripts/venv_pycache.py" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || die "python3 is required"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "python 3.11 or newer is required (ansible-core 2.19)"

# Debian ships venv/ensurepip separately.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "python3-venv is missing: run as root or install it"
  echo "berth: installing python3-venv"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; } \
    >/dev/null || die "cannot install python3-venv"
fi

echo "berth: creating .venv from requirements.txt"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$top/requirements.txt" ||
  die "pip install -r requirements.txt failed"
# The zipped modules the controller runs itself keep their bytecode, as on
# the lab hosts (why: scripts/venv_pycache.py).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
install -m 0644 "$top/images/host/berth_lab_pycache.py" "$site/berth_lab_pycache.py"
install -m 0644 "$top/scripts/venv_pycache.py" "$site/berth_venv_pycache.py"
echo "import berth_venv_pycache" >"$site/berth_venv_pycache.pth"
echo "$want" >"$stamp"
