#!/bin/sh
# Removes berth's iptables chains (firewall role, tasks/reset.yml). Prints one
# line per thing it removed, or would remove with --check; nothing when
# there is nothing of berth's left. Docker's own chains are left alone.
set -eu
check=false
[ "${1:-}" = --check ] && check=true

run() {
  $check || "$@"
}

# An apply still waiting for its confirmation would load rules again.
for unit in berth-firewall-revert.timer berth-firewall-revert.service; do
  if systemctl is-active --quiet "$unit" 2>/dev/null; then
    echo "unit $unit"
    run systemctl stop "$unit"
  fi
done

for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null 2>&1 || continue
  if "$ipt" -w -S BERTH-INPUT >/dev/null 2>&1; then
    # berth set INPUT's policy to DROP together with this chain: open it
    # again before the chain that lets SSH in goes.
    echo "$ipt: INPUT policy ACCEPT"
    run "$ipt" -w -P INPUT ACCEPT
  fi
  for pair in INPUT:BERTH-INPUT DOCKER-USER:BERTH-DOCKER-USER; do
    from=${pair%%:*} chain=${pair#*:}
    while "$ipt" -w -C "$from" -j "$chain" >/dev/null 2>&1; do
      echo "$ipt: jump $from -> $chain"
      $check && break
      "$ipt" -w -D "$from" -j "$chain"
    done
    if "$ipt" -w -S "$chain" >/dev/null 2>&1; then
      echo "$ipt: chain $chain"
      run "$ipt" -w -F "$chain"
      run "$ipt" -w -X "$chain"
    fi
  done
done
