"""Helpers for tests that drive ansible-playbook against real hosts."""

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)


@dataclass
class PlaybookRun:
    args: list
    returncode: int
    output: str
    recap: dict = field(default_factory=dict)

    def changed(self):
        return {host: stats["changed"] for host, stats in self.recap.items()}

    def total_changed(self):
        return sum(self.changed().values())

    def explain(self):
        return "ansible-playbook %s exited %d\n%s" % (" ".join(self.args), self.returncode, self.output[-6000:])


def parse_recap(output):
    return {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(output)}


def ansible_playbook(*args, env=None, timeout=1800):
    """Run ansible-playbook from the project root, return output and recap."""
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    full_env.update(env or {})
    trace = os.environ.get("BERTH_TEST_TRACE")
    if trace:
        # Where a slow test spends its time: each run's output with per-task times.
        full_env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    started = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if trace:
        os.makedirs(trace, exist_ok=True)
        with open(os.path.join(trace, "%.3f.log" % started), "w", encoding="utf-8") as stream:
            stream.write("%.1f s: ansible-playbook %s\n%s" % (time.monotonic() - started, " ".join(args), proc.stdout))
    return PlaybookRun(list(args), proc.returncode, proc.stdout, parse_recap(proc.stdout))


def local_playbook(*args, **kwargs):
    """ansible-playbook on the control host itself, with this venv's Python."""
    return ansible_playbook("-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, *args, **kwargs)


class Background:
    """ansible-playbook in its own process group, so that kill -9 reaches
    every process of the control node's run at once."""

    def __init__(self, lab, *args):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
        self.proc = subprocess.Popen(
            ["ansible-playbook", "-i", lab.inventory, *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait(self, timeout=900):
        self.proc.wait(timeout=timeout)
        output = self.output()
        os.unlink(self.log.name)
        return self.proc.returncode, output

    def output(self):
        with open(self.log.name, encoding="utf-8") as stream:
            return stream.read()

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.log.name)


def wait_for(condition, timeout=90, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout


def molecule_objects():
    """The containers and networks of running Molecule scenarios (labelled
    owner=molecule) and the volumes those containers mount, by kind."""
    containers = set(docker("ps", "-aq", "--no-trunc", "--filter", "label=owner=molecule").split())
    volumes = set()
    if containers:
        mounts = docker(
            "inspect", "--format", '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}', *containers, check=False
        )
        volumes = set(mounts.split())
    networks = set(docker("network", "ls", "-q", "--no-trunc", "--filter", "label=owner=molecule").split())
    return {"containers": containers, "networks": networks, "volumes": volumes}


def docker_objects(lab_name=None):
    """Every container, network and volume of the local engine, by id. With
    `lab_name`, the labelled objects of other test labs are left out: a
    second test session's lab comes and goes meanwhile, and so may the
    Molecule scenarios that make test runs beside the lab sessions."""
    listings = {
        "containers": ("ps", "-aq", "--no-trunc"),
        "networks": ("network", "ls", "-q", "--no-trunc"),
        "volumes": ("volume", "ls", "-q"),
    }
    # Molecule's objects are looked up before and after the listing, so one
    # made or removed meanwhile is still known as Molecule's.
    others = molecule_objects() if lab_name else {}
    found = {}
    for kind, command in listings.items():
        ids = set(docker(*command).split())
        if lab_name:
            labelled = set(docker(*command, "--filter", "label=berth.lab").split())
            ours = set(docker(*command, "--filter", "label=berth.lab=" + lab_name).split())
            ids -= labelled - ours
        found[kind] = ids
    if lab_name:
        for kind, ids in molecule_objects().items():
            found[kind] -= ids | others[kind]
    return found


# Tool caches; the checks write .hypothesis and .ruff_cache while the labs run.
SKIP_DIRS = {".git", ".venv", ".cache", ".pytest_cache", "__pycache__", ".ansible", ".hypothesis", ".ruff_cache"}


def project_files(lab_name=None):
    """Every path under the project (outside caches) with a content hash.
    With `lab_name`, other test labs' state under .lab/ is left out."""
    found = {}
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        rel_dir = os.path.relpath(directory, ROOT)
        if lab_name and rel_dir == ".lab":
            dirs[:] = [d for d in dirs if d == lab_name]
            continue
        found[rel_dir] = "dir %o" % (os.stat(directory).st_mode & 0o7777)
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                found[os.path.join(rel_dir, name)] = "link " + os.readlink(path)
            else:
                with open(path, "rb") as stream:
                    found[os.path.join(rel_dir, name)] = hashlib.sha256(stream.read()).hexdigest()
    return found


def lab_secrets(lab):
    """What the lab's secrets file (ansible-vault, in its inventory) holds,
    opened as an operator would: ansible-vault view, the lab's password
    coming from ansible.cfg."""
    path = os.path.join(os.path.dirname(lab.inventory), "berth_secrets.vault.yml")
    if not os.path.exists(path):
        return {}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    shown = subprocess.run(["ansible-vault", "view", path], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return (yaml.safe_load(shown.stdout) or {}).get("berth_secrets") or {}


def host_json(container, *command):
    """Run a command inside a lab host and parse its JSON output."""
    return json.loads(docker("exec", container, *command))


def lab_hosts(inventory):
    """{host: address} of a lab inventory written by lab_up.yml."""
    with open(inventory, encoding="utf-8") as stream:
        data = yaml.safe_load(stream)["all"]
    buildings = data["vars"]["berth_buildings"]
    return {host: spec["ansible_host"] for building in buildings for host, spec in data["children"][building]["hosts"].items()}


def lab_exec(container, command, check=False, timeout=120):
    """Run a shell command inside a lab host container."""
    return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, check=check, timeout=timeout)


def can_connect(from_host, address, port, wait=2):
    """Whether a TCP connection from one lab host to address:port succeeds."""
    return lab_exec(from_host, "nc -z -w %d %s %d" % (wait, address, port)).returncode == 0


def ensure_busybox_image(host, image="berth/busybox:lab"):
    """A 1 MB image built inside a lab host from its own busybox binary."""
    script = (
        f"docker image inspect {image} >/dev/null 2>&1 || {{ d=$(mktemp -d); cp /bin/busybox $d/; "
        f'tar -C $d -c . | docker import -c \'CMD ["/busybox", "sh"]\' - {image} >/dev/null; }}'
    )
    lab_exec(host, script, check=True)
    return image


def task_results(output, task_name):
    """Results of a task as printed with -v (YAML callback format), per host."""
    results = {}
    for section in output.split("TASK [%s]" % task_name)[1:]:
        section = section.split("\nTASK [", 1)[0].split("\nPLAY RECAP", 1)[0]
        lines = section.splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"^(?:ok|changed|failed|fatal): \[([^\]]+)\].*=>\s*$", line)
            if not match:
                continue
            block = []
            for follower in lines[index + 1 :]:
                if follower and not follower.startswith("    "):
                    break
                block.append(follower[4:])
            results[match.group(1).split(" ->")[0]] = yaml.safe_load("\n".join(block)) or {}
    return results


POPULATE = """
import io, json, sys, tarfile
import docker
client = docker.APIClient(version="auto")
for index, (repository, tag, busybox) in enumerate(json.load(sys.stdin)):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        payload = ("image %d %s:%s" % (index, repository, tag)).encode()
        info = tarfile.TarInfo("content")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        if busybox:
            tar.add("/bin/busybox", arcname="busybox")
    kwargs = {"repository": repository, "tag": tag} if repository else {}
    client.import_image_from_data(data.getvalue(), **kwargs)
"""


def populate_images(host, images):
    """Import tiny distinct images into a lab host's engine:
    [(repository or None, tag or None, with_busybox)]."""
    result = subprocess.run(
        ["docker", "exec", "-i", host, "python3", "-c", POPULATE], input=json.dumps(images), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


SEED_REGISTRY = r"""
import gzip, hashlib, io, json, sys, tarfile
import requests
registry, spec = sys.argv[1], json.load(sys.stdin)
base = "https://%s/v2/" % registry
session = requests.Session()
session.verify = "/etc/docker/certs.d/%s/ca.crt" % registry

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def upload(repo, data):
    digest = sha(data)
    if session.head(base + "%s/blobs/%s" % (repo, digest)).status_code == 200:
        return digest
    started = session.post(base + "%s/blobs/uploads/" % repo)
    started.raise_for_status()
    location = started.headers["Location"]
    if location.startswith("/"):
        location = "https://%s%s" % (registry, location)
    done = session.put(location + ("&" if "?" in location else "?") + "digest=" + digest, data=data,
                       headers={"Content-Type": "application/octet-stream"})
    done.raise_for_status()
    return digest

layers = {}
for repo, tag, variant, created in spec:
    if repo not in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            payload = ("layer of %s" % repo).encode()
            info = tarfile.TarInfo("content")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        packed = gzip.compress(raw.getvalue(), mtime=0)
        layers[repo] = (upload(repo, packed), len(packed), sha(raw.getvalue()))
    layer, size, diff_id = layers[repo]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                         "config": {"Labels": {"variant": variant}}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": upload(repo, config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size, "digest": layer}]}
    put = session.put(base + "%s/manifests/%s" % (repo, tag), data=json.dumps(manifest),
                      headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    put.raise_for_status()
"""

REGISTRY_TAGS = r"""
import json, sys
import requests
registry, repos = sys.argv[1], json.loads(sys.argv[2])
session = requests.Session()
session.verify = "/etc/docker/certs.d/%s/ca.crt" % registry
found = {}
for repo in repos:
    answer = session.get("https://%s/v2/%s/tags/list?n=10000" % (registry, repo))
    found[repo] = sorted(answer.json().get("tags") or []) if answer.status_code == 200 else []
print(json.dumps(found))
"""


def seed_registry(host, registry, images):
    """Push synthetic images from a lab host: [(repo, tag, variant, created)];
    tags with the same variant share one manifest digest."""
    result = subprocess.run(
        ["docker", "exec", "-i", host, "python3", "-c", SEED_REGISTRY, registry],
        input=json.dumps(images),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def registry_tags(host, registry, repositories):
    result = subprocess.run(
        ["docker", "exec", host, "python3", "-c", REGISTRY_TAGS, registry, json.dumps(repositories)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


LOAD_CLIENT = r"""
import http.client, json, os, sys, threading, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
minimum, max_seconds, stop_file, threads = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], int(sys.argv[7])
# Paced, so the load leaves the 2-core machine room for what it measures.
interval = threads / float(sys.argv[8]) if float(sys.argv[8]) > 0 else 0
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "bodies": {}, "errors": [], "first": None, "last": None}
started = time.monotonic()

def finished():
    if time.monotonic() - started > max_seconds:
        return True
    return os.path.exists(stop_file) and stats["ok"] + stats["failed"] >= minimum

def worker():
    due = time.monotonic()
    while not finished():
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode(errors="replace").strip()
            connection.close()
            problem = None if response.status == 200 else "HTTP %d" % response.status
        except Exception as exc:
            body, problem = None, "%s: %s" % (type(exc).__name__, exc)
        with lock:
            if problem:
                stats["failed"] += 1
                if len(stats["errors"]) < 10:
                    stats["errors"].append(problem)
            else:
                stats["ok"] += 1
                stats["bodies"][body] = stats["bodies"].get(body, 0) + 1
                stats["first"] = stats["first"] or body
                stats["last"] = body

workers = [threading.Thread(target=worker) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
stats["seconds"] = round(time.monotonic() - started, 2)
print(json.dumps(stats))
"""


class Load:
    """Bounded HTTP load from inside a lab host against its own proxy (or,
    with `target`, another host's address): new connection per request, at
    most `rate` requests a second (0: as fast as it goes), stops after
    `minimum` requests once told to stop, or after `max_seconds` whatever
    happens."""

    def __init__(self, host, path="/version", port=80, minimum=2000, max_seconds=240, threads=4, target="127.0.0.1", rate=200):
        self.host = host
        self.target = target
        self.stop_file = "/tmp/berth-load-stop" if target == "127.0.0.1" else "/tmp/berth-load-stop-%s" % target
        lab_exec(host, "rm -f %s" % self.stop_file)
        self.process = subprocess.Popen(
            [
                "docker",
                "exec",
                host,
                "python3",
                "-c",
                LOAD_CLIENT,
                target,
                str(port),
                path,
                str(minimum),
                str(max_seconds),
                self.stop_file,
                str(threads),
                str(rate),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self):
        lab_exec(self.host, "touch %s" % self.stop_file)
        out, err = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, err
        return json.loads(out)


# -- the firewall's probes: a web server on a host and one in a container ---------
WEB_PORT = 80
PUBLISHED_PORT = 8080
# The lab's own firewall_allow (inventories/lab/group_vars/all/firewall.yml).
LAB_ALLOW = {"ssh": {"buildings": ["all"]}, "registry": {"buildings": ["all"]}}
DEFAULT_REACH = {
    "web from own building": True,
    "web from other building": False,
    "published from own building": True,
    "published from other building": False,
}


def start_host_web(target):
    lab_exec(
        target,
        "mkdir -p /srv/www && echo host > /srv/www/index.html && systemctl stop test-web 2>/dev/null; "
        "systemd-run --unit test-web busybox httpd -f -p %d -h /srv/www" % WEB_PORT,
    )


def web_probes(target):
    """Generator for a fixture: a web server on the host itself and one in a
    container publishing a port, removed afterwards."""
    image = ensure_busybox_image(target)
    start_host_web(target)
    lab_exec(
        target,
        "docker rm -f published >/dev/null 2>&1; docker run -d --name published --restart unless-stopped -p %d:80 %s "
        "/busybox sh -c 'mkdir -p /www && echo container > /www/index.html && /busybox httpd -f -p 80 -h /www'" % (PUBLISHED_PORT, image),
        check=True,
    )
    yield
    lab_exec(target, "docker rm -f published; systemctl stop test-web")


def wait_for_published(target, seconds=60):
    deadline = time.monotonic() + seconds
    while lab_exec(target, "docker inspect -f '{{.State.Running}}' published").stdout.strip() != "true":
        assert time.monotonic() < deadline, "the published container did not come back"
        time.sleep(1)


def reachability(hosts):
    """hosts: target, same (its building), other (another building), address."""
    address = hosts["address"]
    return {
        "web from own building": can_connect(hosts["same"], address, WEB_PORT),
        "web from other building": can_connect(hosts["other"], address, WEB_PORT),
        "published from own building": can_connect(hosts["same"], address, PUBLISHED_PORT),
        "published from other building": can_connect(hosts["other"], address, PUBLISHED_PORT),
    }


def reboot(host, seconds=90):
    """A real reboot of a lab host: a fresh network namespace (empty tables)
    and a fresh systemd boot, with units starting in their own order."""
    docker("restart", "-t", "5", host)
    deadline = time.monotonic() + seconds
    while lab_exec(host, "systemctl is-system-running").stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline, "%s did not boot" % host
        time.sleep(1)


def reachable(lab, name):
    """Whether Ansible reaches a host again (the first try after a restart
    may fail on the SSH master connection of before)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return (
        subprocess.run(
            ["ansible", "-i", lab.inventory, name, "-m", "ansible.builtin.ping"], cwd=ROOT, env=env, capture_output=True, check=False
        ).returncode
        == 0
    )


def firewall_hosts(lab):
    """The firewall tests' roles: a target (a1), a host of its building (a2)
    and one of another building (b1)."""
    names = sorted(lab.hosts)
    a1, a2, b1 = (next(n for n in names if n.endswith(suffix)) for suffix in ("-a1", "-a2", "-b1"))
    return {"target": a1, "same": a2, "other": b1, "address": lab.hosts[a1], "lab": lab}


def throwaway_tls(directory, sans, ca_name="berth test CA"):
    """A throwaway CA and a server certificate for `sans` (["IP:127.0.0.1"]),
    made with openssl in `directory`: the paths (ca.pem, server.pem, server.key)."""
    directory = str(directory)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(os.path.join(directory, "server.ext"), "w", encoding="utf-8") as stream:
        # What Python 3.13's strict verification (Debian 13's hosts) asks for.
        stream.write(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\nsubjectAltName=%s\n" % ",".join(sans)
        )
    ca_extensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    for command in (
        ["req", "-x509", *ec, *ca_extensions, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=" + ca_name],
        ["req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2", "-days", "2"]
        + ["-extfile", "server.ext", "-out", "server.pem"],
    ):
        subprocess.run(["openssl", *command], cwd=directory, check=True, capture_output=True)
    return tuple(os.path.join(directory, name) for name in ("ca.pem", "server.pem", "server.key"))
