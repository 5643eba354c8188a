#!/bin/sh
# A host's berth-relevant state, as sorted text sections: packages, files
# (type, mode, owner, and a hash for regular files outside /var/lib),
# accounts, units, iptables, network links and Docker objects. Written to
# /var/tmp/berth-snapshot/NAME. Caches, logs and package databases are left
# out: they change with any apt run and hold no configuration; so is the
# Python bytecode that any Python run writes (the lab image's cache hook).
set -eu
name=${1:?snapshot name}
out=/var/tmp/berth-snapshot
mkdir -p "$out"
{
  echo "== packages"
  dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort
  echo "== manual"
  apt-mark showmanual | sort
  echo "== files"
  find /etc /usr/local /opt /srv /var/lib /var/backups /var/spool /root -xdev \
    \( -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/systemd -o -path /var/lib/ucf \
    -o -path /root/.ansible -o -path /var/lib/dhcp -o -path /etc/ld.so.cache \
    -o -name '*.pyc' -o -name __pycache__ \
    -o -path '/etc/passwd*' -o -path '/etc/group*' -o -path '/etc/shadow*' -o -path '/etc/gshadow*' \) -prune -o \
    -printf '%p %y %m %u:%g\n' | sort | while read -r path kind mode owner; do
    case "$kind:$path" in
      f:/var/lib/*) echo "$path $kind $mode $owner" ;;
      f:*) echo "$path $kind $mode $owner $(sha256sum "$path" | cut -c1-16)" ;;
      *) echo "$path $kind $mode $owner" ;;
    esac
  done
  # The engine's data root is a volume of its own (-xdev leaves it out).
  [ -d /var/lib/docker ] && find /var/lib/docker -mindepth 1 -maxdepth 1 -printf '%p %y\n' | sort
  # Accounts by name (the files above are left out: their backups and
  # order change with any edit).
  echo "== users"
  getent passwd | cut -d: -f1 | sort
  echo "== groups"
  getent group | cut -d: -f1,4 | sort
  echo "== unit-files"
  systemctl list-unit-files --no-legend --no-pager | awk '{print $1, $2}' | sort
  echo "== active"
  systemctl list-units --all --no-legend --no-pager --plain --state=active |
    awk '$1 ~ /\.(service|socket|timer|path|target)$/ {print $1}' | sort
  for ipt in iptables ip6tables; do
    echo "== $ipt"
    "$ipt-save" 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/' || true
  done
  echo "== links"
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "== docker"
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    docker ps -a --format 'container {{.Names}}' | sort
    docker network ls --format 'network {{.Name}}' | sort
    docker volume ls --format 'volume {{.Name}}' | sort
  fi
} >"$out/$name"
