#!/bin/sh
# Stand-in for Rancher's system-agent-install.sh, served at /system-agent-install.sh by
# berth's Rancher API stand-in (tests/rancher_standin). A test double: it installs
# NOTHING real (no rancher-system-agent binary, no RKE2/K3s). It checks its arguments
# and Rancher's CA the way the real installer does, leaves the files the real one
# leaves (so "already registered" checks behave as on a real node), and records how
# it was called.
#
# Files it writes, at the real installer's default paths:
#   /etc/rancher/agent/                                     0700
#   /etc/rancher/agent/config.yaml                          0600, names the files below
#   /etc/rancher/agent/cattle-id                            0600, kept across runs
#   /var/lib/rancher/agent/                                 0700
#   /var/lib/rancher/agent/rancher2_connection_info.json    0600, from <server>/v3/connect/agent
#   /etc/systemd/system/rancher-system-agent.service        the unit; here it only sleeps
#   /etc/systemd/system/rancher-system-agent.env            0400, proxy variables
# and, stand-in only:
#   /var/lib/rancher-standin/agent-install.json             0600 (holds the token): this run
# The record also goes to <server>/standin/agents.
#
# Test-only environment:
#   STANDIN_ROOT=/tmp/x   place every file under /tmp/x (file contents still name the node
#                         paths, as in a chroot), skip systemctl and the root check, so a
#                         test can run this script unprivileged.
# Like the real installer it honours CATTLE_AGENT_CONFIG_DIR and CATTLE_AGENT_VAR_DIR, and
# CATTLE_SERVER, CATTLE_TOKEN, CATTLE_CA_CHECKSUM, CATTLE_ROLE_*, CATTLE_LABELS, CATTLE_TAINTS
# as defaults for the flags.
#
# Unlike the real one it needs python3 (Ansible-managed hosts have it) instead of curl,
# requires --ca-checksum (berth always pins the CA), refuses --insecure/-k, and does not
# retry: it fails at once so tests see failures quickly.

# The caller's environment as it was, for the record (assignments below may change it).
STANDIN_ORIG_ENV=$(env | grep -E '^(CATTLE_[A-Z0-9_]*|STANDIN_ROOT|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy)=' || true)
export STANDIN_ORIG_ENV

STANDIN_RECORD=/var/lib/rancher-standin/agent-install.json
UNIT_DIR=/etc/systemd/system

info() {
    echo "[INFO] " "$@"
}

fatal() {
    echo "[FATAL] " "$@" >&2
    exit 1
}

needs_value() {
    [ "$1" -ge 2 ] || fatal "$2 needs a value"
}

append() {
    if [ -n "$1" ]; then echo "$1,$2"; else echo "$2"; fi
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        -a | --all-roles)
            CATTLE_ROLE_CONTROLPLANE=true
            CATTLE_ROLE_ETCD=true
            CATTLE_ROLE_WORKER=true
            shift 1
            ;;
        -p | --controlplane)
            CATTLE_ROLE_CONTROLPLANE=true
            shift 1
            ;;
        -e | --etcd)
            CATTLE_ROLE_ETCD=true
            shift 1
            ;;
        -w | --worker)
            CATTLE_ROLE_WORKER=true
            shift 1
            ;;
        --no-roles)
            CATTLE_ROLE_NONE=true
            shift 1
            ;;
        -n | --node-name)
            needs_value $# "$1"
            CATTLE_NODE_NAME="$2"
            shift 2
            ;;
        --address)
            needs_value $# "$1"
            CATTLE_ADDRESS="$2"
            shift 2
            ;;
        -i | --internal-address)
            needs_value $# "$1"
            CATTLE_INTERNAL_ADDRESS="$2"
            shift 2
            ;;
        -l | --label)
            needs_value $# "$1"
            info "Label: $2"
            CATTLE_LABELS=$(append "${CATTLE_LABELS}" "$2")
            shift 2
            ;;
        --taint | --taints)
            needs_value $# "$1"
            info "Taint: $2"
            CATTLE_TAINTS=$(append "${CATTLE_TAINTS}" "$2")
            shift 2
            ;;
        -s | --server)
            needs_value $# "$1"
            CATTLE_SERVER="$2"
            shift 2
            ;;
        -t | --token)
            needs_value $# "$1"
            CATTLE_TOKEN="$2"
            shift 2
            ;;
        -c | --ca-checksum)
            needs_value $# "$1"
            CATTLE_CA_CHECKSUM="$2"
            shift 2
            ;;
        -k | --insecure | --insecure-*)
            fatal "Refusing $1: the stand-in installer only talks to a Rancher whose CA matches --ca-checksum"
            ;;
        *)
            fatal "Unknown argument passed in ($1)"
            ;;
        esac
    done
}

setup_env() {
    : "${CATTLE_ROLE_CONTROLPLANE:=false}" "${CATTLE_ROLE_ETCD:=false}" "${CATTLE_ROLE_WORKER:=false}" "${CATTLE_ROLE_NONE:=false}"
    if [ "${CATTLE_ROLE_NONE}" = true ]; then
        CATTLE_ROLE_CONTROLPLANE=false
        CATTLE_ROLE_ETCD=false
        CATTLE_ROLE_WORKER=false
    fi
    [ -n "${CATTLE_TOKEN}" ] || fatal "\$CATTLE_TOKEN was not set (--token)."
    [ -n "${CATTLE_SERVER}" ] || fatal "\$CATTLE_SERVER was not set (--server)."
    [ -n "${CATTLE_CA_CHECKSUM}" ] || fatal "--ca-checksum is required: berth always pins Rancher's CA."
    case "${CATTLE_CA_CHECKSUM}" in
    *[!0-9a-f]*) fatal "--ca-checksum must be a lowercase sha256 hex digest, got ${CATTLE_CA_CHECKSUM}" ;;
    esac
    [ ${#CATTLE_CA_CHECKSUM} -eq 64 ] || fatal "--ca-checksum must be 64 hex digits, got ${#CATTLE_CA_CHECKSUM}"
    case "${CATTLE_SERVER}" in
    https://* | http://*) CATTLE_SERVER=${CATTLE_SERVER%/} ;;
    *) fatal "--server must be a URL like https://rancher.example.com, got ${CATTLE_SERVER}" ;;
    esac
    if [ "${CATTLE_ROLE_CONTROLPLANE}" = false ] && [ "${CATTLE_ROLE_ETCD}" = false ] && [ "${CATTLE_ROLE_WORKER}" = false ] && [ "${CATTLE_ROLE_NONE}" = false ]; then
        fatal "You must select at least one role."
    fi
    : "${CATTLE_AGENT_CONFIG_DIR:=/etc/rancher/agent}" "${CATTLE_AGENT_VAR_DIR:=/var/lib/rancher/agent}" "${CATTLE_AGENT_LOGLEVEL:=info}"
    ROOT=${STANDIN_ROOT%/}
    export CATTLE_SERVER CATTLE_TOKEN CATTLE_CA_CHECKSUM CATTLE_ROLE_CONTROLPLANE CATTLE_ROLE_ETCD CATTLE_ROLE_WORKER \
        CATTLE_ROLE_NONE CATTLE_NODE_NAME CATTLE_ADDRESS CATTLE_INTERNAL_ADDRESS CATTLE_LABELS CATTLE_TAINTS \
        CATTLE_AGENT_CONFIG_DIR CATTLE_AGENT_VAR_DIR STANDIN_ROOT STANDIN_RECORD UNIT_DIR
}

ensure_directories() {
    mkdir -p "${ROOT}${CATTLE_AGENT_VAR_DIR}" "${ROOT}${CATTLE_AGENT_CONFIG_DIR}" || fatal "cannot create the agent directories"
    chmod 700 "${ROOT}${CATTLE_AGENT_VAR_DIR}" "${ROOT}${CATTLE_AGENT_CONFIG_DIR}"
    if [ -z "${STANDIN_ROOT}" ]; then
        chown root:root "${ROOT}${CATTLE_AGENT_VAR_DIR}" "${ROOT}${CATTLE_AGENT_CONFIG_DIR}"
    fi
}

# HTTP, hashing and JSON in python3: curl may be missing on a minimal Debian host.
# Phases: cacerts CAFILE | connect CAFILE | record CAFILE ARGS...
HELPER=$(
    cat <<'PY'
import hashlib, json, os, socket, ssl, sys, time, urllib.error, urllib.request

env = os.environ
server = env["CATTLE_SERVER"]
phase, cafile = sys.argv[1], sys.argv[2]


def fail(message):
    sys.stderr.write("[FATAL]  %s\n" % message)
    sys.exit(1)


def node_path(path):
    return env.get("STANDIN_ROOT", "").rstrip("/") + path


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def fetch(url, context, headers=None, data=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        fail("could not reach %s: %s" % (url, getattr(exc, "reason", exc)))


def pinned():
    # From here on trust exactly the CA whose checksum matched, like curl --cacert.
    return ssl.create_default_context(cafile=cafile)


if phase == "cacerts":
    # As the real installer does: fetch the CA unverified (it is what is being
    # verified), and trust it only if its sha256 equals --ca-checksum.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    status, body = fetch(server + "/cacerts", unverified)
    if status != 200 or not body.strip():
        fail("there is no CA certificate configured at %s/cacerts (HTTP %s)" % (server, status))
    if b"-----BEGIN CERTIFICATE-----" not in body:
        fail("the value from %s/cacerts does not look like an x509 certificate" % server)
    checksum = hashlib.sha256(body).hexdigest()
    if checksum != env["CATTLE_CA_CHECKSUM"]:
        fail("Configured cacerts checksum (%s) does not match given --ca-checksum (%s)" % (checksum, env["CATTLE_CA_CHECKSUM"]))
    with open(cafile, "wb") as handle:
        handle.write(body)
    status, _ = fetch(server + "/healthz", pinned())
    if status != 200:
        fail("%s received while testing the Rancher connection" % status)
elif phase == "connect":
    headers = {
        "Authorization": "Bearer " + env["CATTLE_TOKEN"],
        "X-Cattle-Id": env["CATTLE_ID"],
        "X-Cattle-Role-Etcd": env["CATTLE_ROLE_ETCD"],
        "X-Cattle-Role-Control-Plane": env["CATTLE_ROLE_CONTROLPLANE"],
        "X-Cattle-Role-Worker": env["CATTLE_ROLE_WORKER"],
        "X-Cattle-Node-Name": env.get("CATTLE_NODE_NAME", ""),
        "X-Cattle-Address": env.get("CATTLE_ADDRESS", ""),
        "X-Cattle-Internal-Address": env.get("CATTLE_INTERNAL_ADDRESS", ""),
        "X-Cattle-Labels": env.get("CATTLE_LABELS", ""),
        "X-Cattle-Taints": env.get("CATTLE_TAINTS", ""),
    }
    status, body = fetch(server + "/v3/connect/agent", pinned(), headers)
    if status != 200:
        fail("%s received while downloading Rancher connection information (is the registration token right?)" % status)
    write_private(node_path(env["CATTLE_AGENT_VAR_DIR"] + "/rancher2_connection_info.json"), body)
elif phase == "record":
    def listed(name):
        return [item for item in env.get(name, "").split(",") if item]

    roles = [role for role, name in (("etcd", "CATTLE_ROLE_ETCD"), ("controlplane", "CATTLE_ROLE_CONTROLPLANE"), ("worker", "CATTLE_ROLE_WORKER")) if env.get(name) == "true"]
    config_dir, var_dir, unit_dir = env["CATTLE_AGENT_CONFIG_DIR"], env["CATTLE_AGENT_VAR_DIR"], env["UNIT_DIR"]
    record = {
        "args": sys.argv[3:],
        "env": dict(line.split("=", 1) for line in env.get("STANDIN_ORIG_ENV", "").splitlines() if "=" in line),
        "server": server,
        "token": env["CATTLE_TOKEN"],
        "ca_checksum": env["CATTLE_CA_CHECKSUM"],
        "roles": roles,
        "labels": listed("CATTLE_LABELS"),
        "taints": listed("CATTLE_TAINTS"),
        "node_name": env.get("CATTLE_NODE_NAME", ""),
        "address": env.get("CATTLE_ADDRESS", ""),
        "internal_address": env.get("CATTLE_INTERNAL_ADDRESS", ""),
        "cattle_id": env["CATTLE_ID"],
        "hostname": socket.gethostname(),
        "systemd": env.get("STANDIN_SYSTEMD", ""),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {
            "config": config_dir + "/config.yaml",
            "cattle_id": config_dir + "/cattle-id",
            "connection_info": var_dir + "/rancher2_connection_info.json",
            "unit": unit_dir + "/rancher-system-agent.service",
            "env": unit_dir + "/rancher-system-agent.env",
            "record": env["STANDIN_RECORD"],
        },
    }
    data = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
    os.makedirs(os.path.dirname(node_path(env["STANDIN_RECORD"])), mode=0o700, exist_ok=True)
    write_private(node_path(env["STANDIN_RECORD"]), data)
    status, body = fetch(server + "/standin/agents", pinned(), {"Content-Type": "application/json"}, data)
    if status != 201:
        fail("%s received while reporting to %s/standin/agents: %s" % (status, server, body[:200]))
else:
    fail("unknown helper phase %s" % phase)
PY
)

helper() {
    python3 -c "${HELPER}" "$@" </dev/null
}

validate_ca_checksum() {
    CACERT=$(mktemp) || fatal "mktemp failed"
    trap 'rm -f "${CACERT}"' EXIT
    helper cacerts "${CACERT}" || exit 1
    info "Rancher's CA matches --ca-checksum; ${CATTLE_SERVER}/healthz answers"
}

ensure_service_stopped() {
    if [ -z "${STANDIN_ROOT}" ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rancher-system-agent.service </dev/null; then
        info "Rancher System Agent was detected on this host. Ensuring the rancher-system-agent is stopped."
        systemctl stop rancher-system-agent </dev/null
    fi
}

generate_config() {
    UMASK=$(umask)
    umask 0177
    cat <<EOF >"${ROOT}${CATTLE_AGENT_CONFIG_DIR}/config.yaml"
workDirectory: ${CATTLE_AGENT_VAR_DIR}/work
appliedPlanDirectory: ${CATTLE_AGENT_VAR_DIR}/applied
remoteEnabled: true
localEnabled: false
localPlanDirectory: ${CATTLE_AGENT_VAR_DIR}/plans
preserveWorkDirectory: false
connectionInfoFile: ${CATTLE_AGENT_VAR_DIR}/rancher2_connection_info.json
EOF
    umask "${UMASK}"
    chmod 600 "${ROOT}${CATTLE_AGENT_CONFIG_DIR}/config.yaml"
}

generate_cattle_identifier() {
    ID_FILE="${ROOT}${CATTLE_AGENT_CONFIG_DIR}/cattle-id"
    if [ -z "${CATTLE_ID}" ]; then
        if [ -f "${ID_FILE}" ]; then
            CATTLE_ID=$(cat "${ID_FILE}")
            info "Cattle ID was already detected as ${CATTLE_ID}. Not generating a new one."
        else
            CATTLE_ID=$(python3 -c 'import secrets; print(secrets.token_hex(32)[:63])' </dev/null)
            UMASK=$(umask)
            umask 0177
            echo "${CATTLE_ID}" >"${ID_FILE}"
            umask "${UMASK}"
        fi
    fi
    export CATTLE_ID
}

create_systemd_service_file() {
    mkdir -p "${ROOT}${UNIT_DIR}"
    cat <<EOF >"${ROOT}${UNIT_DIR}/rancher-system-agent.service"
# Written by berth's test stand-in for Rancher's system-agent installer: the real unit
# runs /usr/local/bin/rancher-system-agent; this one runs nothing but stays active.
[Unit]
Description=Rancher System Agent
Documentation=https://www.rancher.com
Wants=network-online.target
After=network-online.target
[Install]
WantedBy=multi-user.target
[Service]
EnvironmentFile=-/etc/default/rancher-system-agent
EnvironmentFile=-/etc/sysconfig/rancher-system-agent
EnvironmentFile=-${UNIT_DIR}/rancher-system-agent.env
Type=simple
Restart=always
RestartSec=5s
Environment=CATTLE_LOGLEVEL=${CATTLE_AGENT_LOGLEVEL}
Environment=CATTLE_AGENT_CONFIG=${CATTLE_AGENT_CONFIG_DIR}/config.yaml
ExecStart=/bin/sh -c 'exec sleep infinity'
EOF
}

create_env_file() {
    ENV_FILE="${ROOT}${UNIT_DIR}/rancher-system-agent.env"
    rm -f "${ENV_FILE}"
    UMASK=$(umask)
    umask 0377
    env | grep -E -i '^(NO|HTTP|HTTPS)_PROXY=' >"${ENV_FILE}" || true
    umask "${UMASK}"
}

start_service() {
    if [ -n "${STANDIN_ROOT}" ]; then
        STANDIN_SYSTEMD=skipped-standin-root
    elif [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
        info "systemd is not running here: the unit is written but not started"
        STANDIN_SYSTEMD=skipped-no-systemd
    else
        systemctl daemon-reload </dev/null >/dev/null || fatal "systemctl daemon-reload failed"
        info "Enabling rancher-system-agent.service"
        systemctl enable rancher-system-agent </dev/null || fatal "systemctl enable rancher-system-agent failed"
        info "Starting/restarting rancher-system-agent.service"
        systemctl restart rancher-system-agent </dev/null || fatal "systemctl restart rancher-system-agent failed"
        STANDIN_SYSTEMD=started
    fi
    export STANDIN_SYSTEMD
}

do_install() {
    if [ -z "${STANDIN_ROOT}" ] && [ "$(id -u)" != 0 ]; then
        fatal "This script must be run as root."
    fi
    command -v python3 >/dev/null 2>&1 || fatal "python3 is required by the stand-in installer"
    parse_args "$@"
    setup_env
    ensure_directories
    validate_ca_checksum
    ensure_service_stopped
    generate_config
    generate_cattle_identifier
    helper connect "${CACERT}" || exit 1
    info "Successfully downloaded Rancher connection information"
    create_systemd_service_file
    create_env_file
    start_service
    helper record "${CACERT}" "$@" || exit 1
    info "Recorded this run in ${STANDIN_RECORD} and at ${CATTLE_SERVER}/standin/agents"
}

do_install "$@"
exit 0
