"""docker_image_prune on a lab host's real engine: about 200 images over 10
repositories, some used by running and stopped containers, some protected.
The expected survivors are worked out here, independently of the policy code."""

import json

import pytest
from labtools import lab_exec, populate_images, task_results

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
    return {"keep": KEEP, "keep_patterns": ["release-*"], "protected": populated["protected"], "grace": 0, "repositories": ["prunetest/*"]}


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
    assert result["bytes"] > 0
    assert image_ids(host) == before


def test_prune_leaves_exactly_the_expected_images(lab, host, populated):
    run, result = prune(lab, host, policy(populated))
    assert run.returncode == 0, run.explain()
    assert result["failed"] == []
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
        ({"keep": -1}, "keep must be a whole number of tags, 0 or more, got -1"),
        ({"keep_patterns": ["release-[0-9"]}, "keep_patterns[0]: 'release-[0-9' has an unbalanced [ ]"),
        ({"grace": "a while"}, "grace: 'a while' is not a duration"),
    ],
)
def test_bad_policy_fails_before_any_removal(lab, host, populated, options, message):
    before = image_ids(host)
    run, _ = prune(lab, host, dict(policy(populated), **options))
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert image_ids(host) == before
