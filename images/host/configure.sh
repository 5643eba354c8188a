#!/bin/sh
# Turns a Debian 12 or 13 rootfs into a lab host. Runs inside the image build.
set -eu
here=/usr/local/lib/berth-host

missing=""
for pkg in $(grep -v '^#' "$here/packages.txt"); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
    missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  apt-get update
  # shellcheck disable=SC2086  # word splitting is the point
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi
apt-get clean
# No package lists in the image, and an mtime that makes any apt cache age
# check refresh them on first use.
rm -rf /var/lib/apt/lists/* /var/lib/apt/periodic/update-success-stamp
touch -d @0 /var/lib/apt/lists

# The bytecode cache for the modules Ansible sends (why: berth_lab_pycache.py).
# A .pth line runs at every interpreter start; Debian's own sitecustomize
# would shadow one of ours.
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
install -d "$site"
install -m 0644 "$here/berth_lab_pycache.py" "$site/berth_lab_pycache.py"
echo "import berth_lab_pycache" >"$site/berth_lab_pycache.pth"

# Every host gets its own identity at first boot.
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# Host keys are mounted by the lab; generate any that are missing (Molecule
# platforms have none) before sshd starts.
cat >/etc/systemd/system/berth-ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
UNIT
systemctl enable berth-ssh-hostkeys.service

cat >/etc/ssh/sshd_config.d/berth.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF
install -d -m 0700 /root/.ssh

# No consoles in a container.
systemctl mask getty@tty1.service serial-getty@ttyS0.service console-getty.service
