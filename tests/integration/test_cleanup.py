"""Fleet-aware cleanup on the test lab: a registry with 100+ tags, a
multi-arch index and a moved tag, where what is deployed on lab hosts
survives however old it is (as a tag, as an untagged manifest or as one
platform of an index), shared digests stay under kept tags, kept images
still pull after GC, an idle host protects nothing, a dry run sends no
mutating request, an empty registry is nothing to prune, and a stopped
Docker host makes the registry prune delete nothing even when the dry run
is switched off from the command line."""

import json
import subprocess
import time
import uuid

import pytest
from labtools import docker, ensure_busybox_image, lab_exec, registry_tags, seed_registry

VERSIONS = ["1.%d.0" % n for n in range(22)]
MULTI = ["1.%d.0" % n for n in range(5)]
KEEP = 3
STORAGE = "/var/lib/docker-registry/docker/registry/v2/repositories"

# Pushes images, indexes and untagged manifests from a lab host; prints the
# digests. Spec entries: [repo, tag or null, variant, [platform variants] or null].
PUSH = r"""
import gzip, hashlib, io, json, sys, tarfile
import requests
registry, spec = sys.argv[1], json.load(sys.stdin)
base = "https://%s/v2/" % registry
session = requests.Session()
session.verify = "/etc/docker/certs.d/%s/ca.crt" % registry
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE = "application/vnd.docker.distribution.manifest.v2+json"

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def upload(repo, data):
    digest = sha(data)
    if session.head(base + "%s/blobs/%s" % (repo, digest)).status_code != 200:
        started = session.post(base + "%s/blobs/uploads/" % repo)
        started.raise_for_status()
        location = started.headers["Location"]
        if location.startswith("/"):
            location = "https://%s%s" % (registry, location)
        session.put(location + ("&" if "?" in location else "?") + "digest=" + digest, data=data,
                    headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    return digest, len(data)

def put(repo, reference, media_type, document):
    body = json.dumps(document).encode()
    session.put(base + "%s/manifests/%s" % (repo, reference), data=body, headers={"Content-Type": media_type}).raise_for_status()
    return sha(body), len(body)

def image(repo, variant):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = ("layer of %s" % variant).encode() * 64
        info = tarfile.TarInfo("content")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    packed = gzip.compress(raw.getvalue(), mtime=0)
    layer, size = upload(repo, packed)
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2025-01-01T00:00:00Z",
                         "config": {"Labels": {"variant": variant}},
                         "rootfs": {"type": "layers", "diff_ids": [sha(raw.getvalue())]}}).encode()
    config_digest, config_size = upload(repo, config)
    return {"schemaVersion": 2, "mediaType": IMAGE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_size, "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size, "digest": layer}]}

out = []
for repo, tag, variant, platforms in spec:
    if platforms:
        children = []
        for arch, child in zip(["amd64", "arm64", "s390x"], platforms):
            document = image(repo, child)
            digest, size = put(repo, sha(json.dumps(document).encode()), IMAGE, document)
            children.append({"mediaType": IMAGE, "digest": digest, "size": size, "platform": {"architecture": arch, "os": "linux"}})
        digest, _ = put(repo, tag, LIST, {"schemaVersion": 2, "mediaType": LIST, "manifests": children})
        out.append({"repo": repo, "tag": tag, "digest": digest, "children": [c["digest"] for c in children]})
    else:
        document = image(repo, variant)
        digest, _ = put(repo, tag or sha(json.dumps(document).encode()), IMAGE, document)
        out.append({"repo": repo, "tag": tag, "digest": digest, "children": []})
print(json.dumps(out))
"""


def push(host, registry, spec):
    done = subprocess.run(
        ["docker", "exec", "-i", host, "python3", "-c", PUSH, registry], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def revisions(server, repo):
    """Digests the registry's storage holds for a repository (tagged or not)."""
    # A delete removes the revision's link file, not its directory.
    command = "find %s/%s/_manifests/revisions/sha256 -mindepth 2 -maxdepth 2 -name link 2>/dev/null | awk -F/ '{print $(NF-1)}'"
    listed = lab_exec(server, command % (STORAGE, repo)).stdout.split()
    return {"sha256:" + name for name in listed}


def mutating_requests(server, since):
    """Mutating requests that the modules (Ansible's HTTP client) sent to the registry since `since`."""
    log = lab_exec(server, "journalctl -u docker-registry --no-pager -o cat --since @%d" % since).stdout
    return [
        line
        for line in log.splitlines()
        if "ansible-httpget" in line and any(" %s /v2/" % m in line for m in ("DELETE", "PUT", "POST", "PATCH"))
    ]


@pytest.fixture(scope="module")
def fleet(lab):
    hosts = sorted(lab.hosts)
    pick = lambda suffix: next(h for h in hosts if h.endswith(suffix))  # noqa: E731
    prefix = "regtest%s" % uuid.uuid4().hex[:6]
    registry = "%s:5000" % lab.hosts[pick("-a1")]
    repos = ["%s/r%d" % (prefix, n) for n in range(5)]
    images = []
    for repo in repos:
        for index, version in enumerate(VERSIONS):
            images.append((repo, version, "%s-%d" % (repo, index), "2026-01-01T00:%02d:00Z" % index))
        images.append((repo, "stable", "%s-2" % repo, "2026-01-01T00:02:00Z"))  # shares 1.2.0's digest
    seed_registry(pick("-a2"), registry, images)
    multi, moved = "%s/multi" % prefix, "%s/moved" % prefix
    indexes = push(pick("-a2"), registry, [[multi, v, None, ["%s-%s-amd64" % (multi, v), "%s-%s-arm64" % (multi, v)]] for v in MULTI])
    # "1.0" is pushed twice: its first digest is left untagged, run by nobody.
    first, second = push(pick("-a2"), registry, [[moved, "1.0", "moved-a", None], [moved, "1.0", "moved-b", None]])
    b1 = pick("-b1")
    # r0:1.0.0, the oldest of all, is deployed: a stopped container on b1 uses it.
    deployed = "%s/%s:1.0.0" % (registry, repos[0])
    lab_exec(b1, "docker pull -q %s && docker create --name %s-deployed %s /nothing" % (deployed, prefix, deployed), check=True)
    # b1 also runs one platform of multi:1.0.0, pulled by its digest.
    platform = "%s/%s@%s" % (registry, multi, indexes[0]["children"][0])
    lab_exec(b1, "docker pull -q %s && docker create --name %s-platform %s /nothing" % (platform, prefix, platform), check=True)
    # An idle host runs nothing, but holds an old image: it protects nothing.
    # make lab's demo runs on every host, so c1 is made idle here (the
    # rollout tests deploy the demo there again).
    idle = pick("-c1")
    lab_exec(idle, "docker ps -aq | xargs -r docker rm -f", check=True)
    assert lab_exec(idle, "docker ps -aq").stdout.strip() == ""
    lab_exec(idle, "docker pull -q %s/%s:1.0.0" % (registry, repos[1]), check=True)
    yield {
        "lab": lab,
        "registry": registry,
        "repos": repos,
        "multi": multi,
        "indexes": {i["tag"]: i for i in indexes},
        "moved": moved,
        "moved_digests": (first["digest"], second["digest"]),
        "prefix": prefix,
        "seeder": pick("-a2"),
        "deployer": b1,
        "puller": idle,
        "idle": idle,
        "stopped": pick("-b2"),
        "server": pick("-a1"),
    }
    for host in hosts:  # leave no container of ours behind
        lab_exec(host, "docker ps -aq --filter name=%s | xargs -r docker rm -f" % prefix)


def tags(fleet):
    return registry_tags(fleet["seeder"], fleet["registry"], [*fleet["repos"], fleet["multi"], fleet["moved"]])


def expected(fleet):
    survivors = {}
    for repo in fleet["repos"]:
        keep = set(VERSIONS[-KEEP:]) | {"stable", "1.2.0"}  # newest, pattern, shared digest
        if repo == fleet["repos"][0]:
            keep.add("1.0.0")  # deployed on a lab host (r1:1.0.0 only sits on the idle host)
        survivors[repo] = sorted(keep)
    survivors[fleet["multi"]] = sorted({*MULTI[-KEEP:], "1.0.0"})  # one platform of 1.0.0 runs on b1
    survivors[fleet["moved"]] = ["1.0"]
    return survivors


def cleanup(fleet, report, *extra, env=None):
    settings = {
        "image_cleanup_policy": {"keep": 5, "keep_patterns": [], "grace": 0, "repositories": ["*/%s/*" % fleet["prefix"]]},
        "image_cleanup_registry_policy": {"keep": KEEP, "keep_patterns": ["stable"], "repositories": ["%s/*" % fleet["prefix"]]},
        "image_cleanup_prune_dangling": False,
        "image_cleanup_report_path": str(report),
    }
    return fleet["lab"].playbook("playbooks/image_cleanup.yml", "-v", "-e", json.dumps(settings), *extra, env=env)


def test_an_empty_fresh_registry_is_nothing_to_prune(fleet, tmp_path):
    """A registry has no storage tree until its first push. A second,
    empty instance on the registry host, pruned through the playbook with
    the default grace period: a dry run that succeeds and plans nothing."""
    server, port = fleet["server"], 5098
    storage = "/tmp/berth-empty-registry-%s" % fleet["prefix"]
    config = "version: 0.1\\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\\nhttp: {addr: ':%d'}\\n" % (storage, port)
    lab_exec(server, 'mkdir -p %s && printf "%s" > /tmp/empty-registry.yml' % (storage, config), check=True)
    lab_exec(server, "systemd-run --unit berth-empty-registry docker-registry serve /tmp/empty-registry.yml", check=True)
    try:
        deadline = time.monotonic() + 30
        while lab_exec(server, "curl -sf http://127.0.0.1:%d/v2/" % port).returncode != 0:
            assert time.monotonic() < deadline, "the empty registry did not start"
            time.sleep(0.5)
        overrides = {"registry_port": port, "registry_tls": False, "registry_storage_dir": storage}
        run = fleet["lab"].playbook(
            "playbooks/image_cleanup.yml",
            *("-e", json.dumps(overrides), "-e", "image_cleanup_dry_run=true"),
            *("-e", "image_cleanup_report_path=%s" % (tmp_path / "report.json")),
        )
    finally:
        lab_exec(server, "systemctl stop berth-empty-registry; rm -rf %s /tmp/empty-registry.yml" % storage)
    assert run.returncode == 0, run.explain()
    assert "empty, nothing to prune" in run.output
    registry = json.loads((tmp_path / "report.json").read_text())["registries"][server]
    assert registry["status"] == "ok" and registry["empty"] is True and registry["check_mode"] is True
    assert registry["kept"] == registry["removed"] == registry["deleted"] == 0


def test_a_dry_run_plans_and_sends_no_mutating_request(fleet, tmp_path):
    before = tags(fleet)
    stored = revisions(fleet["server"], fleet["moved"])
    assert sum(len(t) for t in before.values()) == 5 * 23 + len(MULTI) + 1
    assert stored == set(fleet["moved_digests"])
    since = time.time() - 1
    run = cleanup(fleet, tmp_path / "report.json", "-e", "image_cleanup_dry_run=true", "--diff", env={"ANSIBLE_SHOW_CUSTOM_STATS": "true"})
    assert run.returncode == 0, run.explain()
    assert tags(fleet) == before and revisions(fleet["server"], fleet["moved"]) == stored
    assert mutating_requests(fleet["server"], since) == []  # not even the probe for disabled deletes
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dry_run"] is True and report["deleted"] == 0 and report["missing_hosts"] == []
    registry = report["registries"][fleet["server"]]
    tagged_going = 5 * 23 + len(MULTI) + 1 - sum(len(v) for v in expected(fleet).values())
    assert registry["removed"] == tagged_going + 1  # and the moved tag's old, untagged digest
    assert "%s@%s" % (fleet["moved"], fleet["moved_digests"][0]) in registry["removed_refs"]
    assert "%s:1.0.0" % fleet["repos"][1] in registry["removed_refs"]  # only the idle host has it
    # --diff shows the same plan as lines that go.
    assert "\n-%s:1.0.0\n" % fleet["repos"][1] in run.output, run.output[-3000:]
    assert report["hosts"][fleet["idle"]]["in_use"] == {"containers": 0, "digests": 0}
    assert report["hosts"][fleet["deployer"]]["in_use"]["digests"] >= 2
    assert "would remove" in run.output and "image cleanup (dry run): ok" in run.output
    # The same report is the job's stats, for a control node that keeps no files.
    stats = run.output.split("CUSTOM STATS:", 1)[1]
    assert "berth_image_cleanup:" in stats and "dry_run: true" in stats, run.output[-3000:]


def test_the_registry_keeps_exactly_the_policy_and_the_fleet(fleet, tmp_path):
    run = cleanup(fleet, tmp_path / "report.json")
    assert run.returncode == 0, run.explain()
    assert tags(fleet) == expected(fleet)
    registry = json.loads((tmp_path / "report.json").read_text())["registries"][fleet["server"]]
    assert registry["changed"] is True and registry["check_mode"] is False
    assert registry["gc"]["blobs_deleted"] > 0
    # multi:1.1.0 went with both its platforms; 1.0.0 stays whole, one of its platforms runs on b1.
    held = revisions(fleet["server"], fleet["multi"])
    gone, kept = fleet["indexes"]["1.1.0"], fleet["indexes"]["1.0.0"]
    assert not {gone["digest"], *gone["children"]} & held
    assert {kept["digest"], *kept["children"]} <= held
    assert {"%s@%s" % (fleet["multi"], d) for d in [gone["digest"], *gone["children"]]} <= set(registry["deleted_refs"])
    # The moved tag's old digest was untagged and run by nobody: gone.
    assert revisions(fleet["server"], fleet["moved"]) == {fleet["moved_digests"][1]}
    # A second run with nothing to prune changes nothing anywhere.
    again = cleanup(fleet, tmp_path / "again.json")
    assert again.returncode == 0, again.explain()
    report = json.loads((tmp_path / "again.json").read_text())
    assert report["registries"][fleet["server"]]["removed"] == 0
    assert report["registries"][fleet["server"]]["changed"] is False
    assert all(entry["removed"] == 0 and entry["changed"] is False for entry in report["hosts"].values())
    assert {host: n for host, n in again.changed().items() if host != "localhost"} == dict.fromkeys(fleet["lab"].hosts, 0)
    # What stays still pulls after garbage collection.
    for ref in (
        "%s:1.0.0" % fleet["repos"][0],
        "%s:%s" % (fleet["repos"][1], VERSIONS[-1]),
        "%s:stable" % fleet["repos"][2],
        "%s:1.0.0" % fleet["multi"],
        "%s@%s" % (fleet["moved"], fleet["moved_digests"][1]),
    ):
        pulled = lab_exec(fleet["puller"], "docker pull -q %s/%s" % (fleet["registry"], ref))
        assert pulled.returncode == 0, pulled.stderr


def test_a_stopped_docker_host_makes_the_registry_prune_delete_nothing(fleet, tmp_path):
    """The issue's reproduction: the dry run switched off from the command
    line as a string, a host stopped, keep 1 and no grace."""
    extra = [(repo, "0.%d.0" % n, "%s-extra-%d" % (repo, n), "2025-01-01T00:00:00Z") for repo in fleet["repos"] for n in range(3)]
    seed_registry(fleet["seeder"], fleet["registry"], extra)
    stray = push(fleet["seeder"], fleet["registry"], [[fleet["moved"], None, "moved-stray", None]])[0]["digest"]
    before, stored = tags(fleet), revisions(fleet["server"], fleet["moved"])
    assert stray in stored
    docker("stop", "-t", "5", fleet["stopped"])
    try:
        # No connection sharing, so the stopped host fails fast and for real.
        run = cleanup(
            fleet,
            tmp_path / "report.json",
            *("-e", "image_cleanup_dry_run=false", "-e", json.dumps({"image_cleanup_registry_policy": {"keep": 1, "grace": 0}})),
            env={"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ConnectTimeout=5"},
        )
    finally:
        docker("start", fleet["stopped"])
    assert run.returncode != 0
    assert "no in-use list from %s" % fleet["stopped"] in run.output, run.explain()
    assert tags(fleet) == before and revisions(fleet["server"], fleet["moved"]) == stored
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "refused" and report["missing_hosts"] == [fleet["stopped"]]
    assert report["hosts"][fleet["stopped"]]["status"] == "missing"
    registry = report["registries"][fleet["server"]]
    assert registry["status"] == "refused" and registry["deleted"] == 0 and registry["missing_hosts"] == [fleet["stopped"]]
    assert report["dry_run"] is False and "(dry run)" not in run.output
    deadline = time.monotonic() + 90
    while lab_exec(fleet["stopped"], "systemctl is-system-running").stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline
        time.sleep(1)


def module(fleet, options, *args):
    run = fleet["lab"].playbook(
        "tests/integration/playbooks/registry-prune.yml", *args, "-e", "target=%s" % fleet["server"], "-e", json.dumps({"prune": options})
    )
    return run


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"policy": {"keep": -2}}, "policy.keep must be a whole number of tags from 0 to 1000, got -2"),
        ({"policy": {"keep_patterns": ["[abc"]}}, "policy.keep_patterns[0]: '[abc' has a [ with no closing ]"),
        ({"policy": {"keep_patterns": ["rel[]"]}}, "policy.keep_patterns[0]: 'rel[]' has an empty []"),
        ({"policy": {"keep_patterns": [":stable"]}}, "policy.keep_patterns[0]: ':stable' is repo:tag with an empty repository side"),
        ({"policy": {"grace": "3651d"}}, "policy.grace: '3651d' is more than ten years"),
        ({"concurrency": 0}, "concurrency must be from 1 to 64, got 0"),
        ({"backend": "quay"}, "value of backend must be one of: distribution, harbor, got: quay"),
        ({"fleet": {"in_use": {}}}, "missing required arguments: hosts found in fleet"),
    ],
)
def test_bad_input_is_refused_before_any_delete(fleet, options, message):
    before = tags(fleet)
    since = time.time() - 1
    options = dict(options)
    policy = dict({"grace": 0, "repositories": ["%s/*" % fleet["prefix"]]}, **options.pop("policy", {}))
    run = module(fleet, dict({"registry": fleet["registry"], "gc": False, "policy": policy}, **options))
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert tags(fleet) == before
    assert mutating_requests(fleet["server"], since) == []


def test_the_module_itself_refuses_without_every_host(fleet):
    """No Jinja around it: the module is handed a fleet with a host that did
    not report, outside check mode, and sends nothing at all."""
    before, since = tags(fleet), time.time() - 1
    fleet_data = {"hosts": [fleet["stopped"], fleet["idle"]], "in_use": {fleet["idle"]: []}}
    policy = {"keep": 0, "grace": 0, "repositories": ["%s/*" % fleet["prefix"]]}
    run = module(fleet, {"registry": fleet["registry"], "policy": policy, "fleet": fleet_data})
    assert run.returncode != 0
    assert "registry prune refused (fail closed): no in-use list from %s" % fleet["stopped"] in run.output, run.explain()
    assert tags(fleet) == before
    log = lab_exec(fleet["server"], "journalctl -u docker-registry --no-pager -o cat --since @%d" % since).stdout
    assert "ansible-httpget" not in log


def test_a_registry_without_deletes_is_detected_and_explained(fleet):
    server = fleet["server"]
    lab_exec(
        server,
        "sed 's/enabled: true/enabled: false/; s/addr: :5000/addr: 127.0.0.1:5099/; s#/var/lib/docker-registry#/tmp/nodelete#' "
        "/etc/docker/registry/config.yml | grep -v -E 'tls:|certificate:|key:' > /tmp/nodelete.yml "
        "&& systemd-run --unit nodelete docker-registry serve /tmp/nodelete.yml",
        check=True,
    )
    try:
        image = ensure_busybox_image(server)
        deadline = time.monotonic() + 30
        while lab_exec(server, "curl -sf http://127.0.0.1:5099/v2/").returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        lab_exec(server, "docker tag %s 127.0.0.1:5099/nodelete/x:1 && docker push -q 127.0.0.1:5099/nodelete/x:1" % image, check=True)
        options = {"registry": "127.0.0.1:5099", "scheme": "http", "policy": {"grace": 0, "keep": 0}, "storage_dir": "/tmp/nodelete"}
        since = time.time() - 1
        # Check mode reads the registry's config instead of probing it with a DELETE.
        planned = module(fleet, dict(options, registry_config="/tmp/nodelete.yml"), "--check")
        log = lab_exec(server, "journalctl -u nodelete --no-pager -o cat --since @%d" % since).stdout
        probed = module(fleet, options)
        left = lab_exec(server, "curl -s http://127.0.0.1:5099/v2/nodelete/x/tags/list").stdout
    finally:
        lab_exec(server, "systemctl stop nodelete; rm -rf /tmp/nodelete.yml /tmp/nodelete")
    assert planned.returncode != 0
    assert "refuses deletes (storage.delete.enabled is off)" in planned.output, planned.explain()
    assert "DELETE" not in log and "GET /v2/" in log
    assert probed.returncode != 0
    assert "refuses deletes (storage.delete.enabled is off)" in probed.output, probed.explain()
    assert json.loads(left)["tags"] == ["1"]
