#!/bin/sh
# What a purged Docker Engine leaves behind (docker role, tasks/reset.yml):
# its data, empty CNI directories, the docker0 bridge, and its iptables
# chains and rules, which stay in the kernel after the daemon is gone. Prints
# one line per removal (or, with --check, per removal it would make);
# nothing when none is left.
set -eu
check=false
[ "${1:-}" = --check ] && check=true
data_root=${DOCKER_DATA_ROOT:-/var/lib/docker}

for dir in "$data_root" /var/lib/containerd; do
  [ -d "$dir" ] || continue
  # A mount point (a volume of its own) is emptied; a directory goes.
  if mountpoint -q "$dir"; then
    [ -n "$(ls -A "$dir")" ] || continue
    echo "contents of $dir"
    $check || find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  else
    echo "$dir"
    $check || rm -rf "$dir"
  fi
done

# The CNI directories the engine's packages make and leave, when empty.
for dir in /etc/cni/net.d /etc/cni; do
  if [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ]; then
    echo "$dir"
    $check || rmdir "$dir"
  fi
done

if ip link show docker0 >/dev/null 2>&1; then
  echo "link docker0"
  $check || ip link delete docker0
fi

# Every rule and chain that names Docker or its bridge is Docker's; a table
# is written back without them, and only when it has any.
for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null 2>&1 || continue
  for table in filter nat; do
    current=$("$ipt-save" -t "$table" 2>/dev/null) || continue
    printf '%s\n' "$current" | grep -qE 'DOCKER|docker0' || continue
    echo "$ipt $table: Docker's chains and rules"
    $check || printf '%s\n' "$current" | grep -vE 'DOCKER|docker0' | "$ipt-restore" -w -T "$table"
  done
done
