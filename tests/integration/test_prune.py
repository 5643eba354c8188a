"""docker_image_prune on a lab host's real engine: about 200 images over 10
repositories, some used by running and stopped containers, some protected.
The expected survivors are worked out here, independently of the policy code."""

import json
import time
import uuid

import pytest
from labtools import lab_exec, populate_images, seed_registry, task_results

REPOS = ["prunetest/r%d" % n for n in range(10)]
SEMVER = ["1.0.%d" % n for n in range(18)]
KEEP = 3


@pytest.fixture(scope="module")
def host(lab):
    return next(h for h in lab.hosts if h.endswith("-b2"))


def tags_on(host):
    out = lab_exec(host, "docker images --format '{{.Repository}}:{{.Tag}}' | grep '^prunetest/' | sort").stdout
    return set(out.split())


def image_ids(host):
    return set(lab_exec(host, "docker images -q --no-trunc | sort").stdout.split())


def prune(lab, host, options, *args):
    run = lab.playbook("tests/integration/playbooks/image-prune.yml", *args, "-e", "target=%s" % host, "-e", json.dumps({"prune": options}))
    results = task_results(run.output, "Show the result")
    return run, results.get(host, {}).get("prune_result", {})


@pytest.fixture(scope="module")
def populated(lab, host):
    lab_exec(
        host, "docker rm -f $(docker ps -aq --filter label=prunetest) 2>/dev/null; docker images -q 'prunetest/*' | xargs -r docker rmi -f"
    )
    images = [(repo, tag, repo == REPOS[0] and tag == "1.0.0") for repo in REPOS for tag in [*SEMVER, "release-1"]]
    images += [(None, None, False)] * 5  # dangling
    populate_images(host, images)
    for repo in REPOS:  # "latest" shares the newest version's image
        lab_exec(host, "docker tag %s:1.0.17 %s:latest" % (repo, repo), check=True)
    lab_exec(host, "docker run -d --label prunetest --name prune-running %s:1.0.0 /busybox sleep 600" % REPOS[0], check=True)
    lab_exec(host, "docker create --label prunetest --name prune-stopped %s:1.0.1 /nothing" % REPOS[1], check=True)
    protected_id = lab_exec(host, "docker inspect -f '{{.Id}}' %s:1.0.4" % REPOS[3], check=True).stdout.strip()
    assert len(tags_on(host)) == 10 * 20
    return {"protected": ["%s:1.0.3" % REPOS[2], protected_id]}


def expected_survivors():
    keep = set()
    for repo in REPOS:
        keep |= {"%s:%s" % (repo, tag) for tag in SEMVER[-KEEP:]}  # newest by version
        keep.add("%s:release-1" % repo)  # keep pattern
    keep |= {"%s:1.0.0" % REPOS[0], "%s:1.0.1" % REPOS[1]}  # running, stopped
    keep |= {"%s:1.0.3" % REPOS[2], "%s:1.0.4" % REPOS[3]}  # protected by ref, by image ID
    return keep


def policy(populated):
    return {
        "policy": {"keep": KEEP, "keep_patterns": ["release-*"], "grace": 0, "repositories": ["prunetest/*"]},
        "protected": populated["protected"],
    }


def test_check_mode_plans_everything_and_changes_nothing(lab, host, populated):
    before = image_ids(host)
    run, result = prune(lab, host, policy(populated), "--check")
    assert run.returncode == 0, run.explain()
    assert result["changed"] is True
    planned_keep = {item["ref"] for item in result["plan"] if item["action"] == "keep"}
    assert planned_keep == expected_survivors()
    reasons = {item["ref"]: item["reasons"] for item in result["plan"]}
    assert reasons["%s:1.0.0" % REPOS[0]] == ["in use"]
    assert reasons["%s:1.0.3" % REPOS[2]] == ["protected"]
    assert result["planned_bytes"] > 0 and result["bytes"] == 0 and result["images_removed"] == []
    assert image_ids(host) == before


def test_prune_leaves_exactly_the_expected_images(lab, host, populated):
    run, result = prune(lab, host, policy(populated))
    assert run.returncode == 0, run.explain()
    assert result["failures"] == []
    assert tags_on(host) == expected_survivors()
    assert lab_exec(host, "docker images -f dangling=true -q").stdout.strip() == ""
    assert lab_exec(host, "docker inspect -f '{{.State.Running}}' prune-running").stdout.strip() == "true"
    again, result = prune(lab, host, policy(populated))
    assert again.returncode == 0, again.explain()
    assert result["changed"] is False and again.total_changed() == 0


def test_exited_containers_and_volumes_go_only_when_asked(lab, host, populated):
    lab_exec(host, "docker rm -f prune-old prune-rollback; docker volume rm -f prune-vol", check=False)
    lab_exec(host, "docker run --label prunetest --name prune-old %s:1.0.0 /busybox true" % REPOS[0], check=True)
    lab_exec(host, "docker run --label prunetest --label berth.app=web --name prune-rollback %s:1.0.0 /busybox true" % REPOS[0], check=True)
    lab_exec(host, "docker volume create prune-vol >/dev/null", check=True)
    lab_exec(host, "sleep 2")
    run, result = prune(lab, host, policy(populated))
    assert result["containers_removed"] == [] and result["volumes_removed"] == []
    run, result = prune(lab, host, dict(policy(populated), containers_older_than="1s", volumes=True))
    assert run.returncode == 0, run.explain()
    assert result["containers_removed"] == ["prune-old"]
    assert "prune-vol" in result["volumes_removed"]
    assert lab_exec(host, "docker inspect prune-rollback").returncode == 0
    lab_exec(host, "docker rm -f prune-rollback")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep": -1}, "policy.keep must be a whole number of tags from 0 to 1000, got -1"),
        ({"keep_patterns": ["release-[0-9"]}, "policy.keep_patterns[0]: 'release-[0-9' has a [ with no closing ]"),
        ({"keep_patterns": ["]a["]}, "policy.keep_patterns[0]: ']a[' has a ] with no opening ["),
        ({"keep_patterns": ["prunetest/*:"]}, "policy.keep_patterns[0]: 'prunetest/*:' is repo:tag with an empty tag side"),
        ({"grace": "a while"}, "policy.grace: 'a while' is not a duration"),
    ],
)
def test_bad_policy_fails_before_any_removal(lab, host, populated, options, message):
    before = image_ids(host)
    options = dict(policy(populated), policy=dict(policy(populated)["policy"], **options))
    run, _ = prune(lab, host, options)
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert image_ids(host) == before


FRESH_STATE = "/tmp/berth-prunetest-first-seen.json"


def test_grace_counts_from_when_the_host_first_saw_a_pulled_image(lab, host, populated):
    """Built a year ago, pulled just now: Docker records no pull time (its
    LastTagTime is for local tags), so the module's first sighting counts."""
    registry = lab.hosts[next(h for h in lab.hosts if h.endswith("-a1"))] + ":5000"
    repo = "prunetest/pulled%s" % uuid.uuid4().hex[:6]
    seed_registry(host, registry, [(repo, "0.1.0", repo, "2025-01-01T00:00:00+07:00")])
    lab_exec(host, "docker pull -q %s/%s:0.1.0" % (registry, repo), check=True)
    details = json.loads(lab_exec(host, "docker image inspect %s/%s:0.1.0" % (registry, repo), check=True).stdout)[0]
    assert details["Metadata"]["LastTagTime"].startswith("0001-01-01")  # what the old code fell back from
    lab_exec(host, "rm -f %s" % FRESH_STATE)
    options = {"policy": {"keep": 0, "grace": "1h", "repositories": ["*/" + repo]}, "dangling": False, "state_path": FRESH_STATE}

    run, result = prune(lab, host, options, "--check")
    assert run.returncode == 0, run.explain()
    reasons = {item["ref"]: item["reasons"] for item in result["plan"]}
    assert reasons["%s/%s:0.1.0" % (registry, repo)] == ["grace period"]
    assert lab_exec(host, "test -e %s" % FRESH_STATE).returncode != 0  # check mode writes nothing

    run, result = prune(lab, host, options)
    assert run.returncode == 0, run.explain()
    assert result["images_removed"] == [] and result["state_changed"] is True
    record = json.loads(lab_exec(host, "cat %s" % FRESH_STATE, check=True).stdout)["first_seen"]
    assert details["Id"] in record and abs(record[details["Id"]] - time.time()) < 300

    again, result = prune(lab, host, options)
    assert again.returncode == 0, again.explain()
    assert result["changed"] is False and again.total_changed() == 0  # idempotent, the record unchanged

    # Once the grace period has passed since that first sighting, it goes.
    gone, result = prune(lab, host, dict(options, policy=dict(options["policy"], grace="1s")))
    assert gone.returncode == 0, gone.explain()
    assert result["images_removed"] == [details["Id"]]
    assert details["Id"] not in json.loads(lab_exec(host, "cat %s" % FRESH_STATE, check=True).stdout)["first_seen"]
