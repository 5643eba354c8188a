"""Named test environments on the test lab: MariaDB, Redis and an app built from
Debian's packages, on fixed addresses of building B. Two environments side by
side on one host, each app reaching its own database and Redis and not the
other's; tearing one down leaves exactly what was there before it."""

import json
import shlex

import pytest
from labtools import Background, lab_exec, wait_for

SERVICES = {
    "db": {
        "image": "env/mariadb:1",
        "env": {"MARIADB_ROOT_PASSWORD": "{password}", "MARIADB_DATABASE": "shop", "TZ": "Asia/Shanghai"},
        "ports": [3306],
        "volumes": ["data:/var/lib/mysql"],
        "memory": "512m",
    },
    "cache": {"image": "env/redis:1", "ports": [6379], "volumes": ["data:/var/lib/redis"], "memory": "128m"},
    "app": {
        "image": "env/app:1",
        "env": {"DB_PASSWORD": "{password}", "INI_CMD": "mariadb -h db -uroot -p\"$DB_PASSWORD\" -e 'select 1' shop"},
        "ports": [8080],
        "proxy": "{listen}",
        "depends_on": ["db", "cache"],
        "cpus": 0.5,
    },
}
LISTEN = {"alpha": 18081, "beta": 18082}


def definition(name, host, app_image="env/app:1", **changes):
    password = "Env-%s-secret-9" % name
    text = json.dumps(SERVICES).replace("{password}", password).replace('"{listen}"', str(LISTEN.get(name, 18089)))
    services = json.loads(text)
    services["app"]["image"] = app_image
    env = {"name": name, "hosts": [host], "services": services}
    env.update(changes)
    return {"env": env}


@pytest.fixture(scope="module")
def envs(lab):
    names = sorted(lab.hosts)
    host, neighbour = (next(n for n in names if n.endswith(s)) for s in ("-b1", "-b2"))
    images = lab.playbook("playbooks/env_images.yml", "-e", "build_host=%s" % host)
    assert images.returncode == 0, images.explain()
    return {"lab": lab, "host": host, "neighbour": neighbour}


def create(envs, spec, *args):
    return envs["lab"].playbook("playbooks/env_create.yml", "-e", json.dumps(spec), *args)


def teardown(envs, name):
    return envs["lab"].playbook("playbooks/env_teardown.yml", "-e", "env_name=%s" % name)


def objects(lab):
    """Every container, network and volume on every lab host."""
    found = {}
    for host in sorted(lab.hosts):
        listing = lab_exec(
            host, "docker ps -aq --no-trunc; echo --; docker network ls -q --no-trunc; echo --; docker volume ls -q", check=True
        )
        found[host] = [sorted(part.split()) for part in listing.stdout.split("--")]
    return found


def firewall_openings(envs):
    """berth's openings in the env host's live INPUT rules, by name."""
    rules = lab_exec(envs["host"], "iptables -S BERTH-INPUT", check=True).stdout
    return sorted({word.strip('"') for word in rules.split() if word.strip('"').startswith("env.")})


def in_app(envs, env, command):
    """Run a command in the env's serving app container (docker_rollout names it per version)."""
    find = "docker ps -q --filter label=berth.env=%s --filter label=berth.service=app --filter status=running" % env
    return lab_exec(envs["host"], "docker exec $(%s) sh -c %s" % (find, shlex.quote(command)))


def sql(envs, env, host="db"):
    command = "mariadb -h %s --connect-timeout=3 -uroot -p\"$DB_PASSWORD\" -N -e 'select 40+2' shop" % host
    return in_app(envs, env, command)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"services": [{"name": "db", "image": "env/redis:1"}, {"name": "db", "image": "env/redis:1"}]}, "duplicate service name"),
        ({"services": {"db": {"image": "env/redis:1", "ip": "10.99.0.5"}}}, "outside"),
        ({"services": {"a": {"image": "env/redis:1", "depends_on": ["b"]}, "b": {"image": "env/redis:1", "depends_on": ["a"]}}}, "cycle"),
        ({"hosts": None, "building": "bldg_z"}, "'bldg_z' is not a building"),
        ({"services": {"db": {"ports": [3306]}}}, "image"),
        ({"reach": ["gamma"]}, "reach: gamma has no network"),
    ],
)
def test_bad_definitions_fail_clearly_and_create_nothing(envs, change, message):
    spec = definition("broken", envs["host"], **change)
    if spec["env"].get("hosts") is None:
        del spec["env"]["hosts"]
    before = objects(envs["lab"])
    run = create(envs, spec)
    assert run.returncode != 0
    assert message in " ".join(run.output.split()), run.explain()
    assert run.total_changed() == 0, run.explain()
    assert objects(envs["lab"]) == before
    if "reach" not in change:  # the definition alone is wrong: no Docker host is asked anything
        assert "List the environments' containers]" not in run.output, run.explain()


def test_a_service_written_twice_is_an_error_not_the_last_one(envs, tmp_path):
    # A mapping key written twice: YAML keeps the last one silently unless
    # ansible.cfg says duplicate_dict_key = error.
    path = tmp_path / "twice.yml"
    path.write_text(
        "env:\n  name: twice\n  hosts: [%s]\n  services:\n"
        "    db:\n      image: env/mariadb:1\n    db:\n      image: env/redis:1\n" % envs["host"]
    )
    before = objects(envs["lab"])
    run = envs["lab"].playbook("playbooks/env_create.yml", "-e", "@%s" % path)
    assert run.returncode != 0
    assert "Found duplicate mapping key 'db'" in run.output, run.explain()
    assert run.total_changed() == 0, run.explain()
    assert objects(envs["lab"]) == before


def test_two_environments_side_by_side_then_released_without_leftovers(envs):
    lab = envs["lab"]
    empty = objects(lab)
    beta = create(envs, definition("beta", envs["host"]))
    assert beta.returncode == 0, beta.explain()
    assert "service  host" in beta.output and "healthy" in beta.output
    with_beta = objects(lab)
    alpha = create(envs, definition("alpha", envs["host"]))
    assert alpha.returncode == 0, alpha.explain()
    for secret in ("Env-alpha-secret-9", "Env-beta-secret-9"):
        assert secret not in alpha.output + beta.output

    for env in ("alpha", "beta"):
        assert sql(envs, env).stdout.strip() == "42", sql(envs, env).stderr
        assert in_app(envs, env, "redis-cli -h cache ping").stdout.strip() == "PONG"
    # alpha's app cannot reach beta's database over beta's own network.
    inspect = "docker inspect berth-env-beta-db --format '{{json .NetworkSettings.Networks}}'"
    networks = json.loads(lab_exec(envs["host"], inspect, check=True).stdout)
    assert sql(envs, "alpha", networks["berth-env-beta"]["IPAddress"]).returncode != 0
    # The apps' listen ports are open in the host firewall to the building, and only them.
    address = envs["lab"].hosts[envs["host"]]
    for env in ("alpha", "beta"):
        assert lab_exec(envs["neighbour"], "curl -sf -m 5 -o /dev/null http://%s:%d/" % (address, LISTEN[env])).returncode == 0
    assert firewall_openings(envs) == ["env.alpha", "env.beta"]
    # Another host of the building reaches a service on its fixed address.
    fixed = networks["berth-bldg_b-fixed"]["IPAddress"]
    assert lab_exec(envs["neighbour"], "nc -z -w 3 %s 3306" % fixed).returncode == 0

    again = create(envs, definition("beta", envs["host"]))
    assert again.returncode == 0, again.explain()
    assert again.total_changed() == 0, again.explain()

    down = teardown(envs, "alpha")
    assert down.returncode == 0, down.explain()
    assert objects(lab) == with_beta
    assert firewall_openings(envs) == ["env.beta"]
    assert lab_exec(envs["neighbour"], "curl -sf -m 5 -o /dev/null http://%s:%d/" % (address, LISTEN["alpha"])).returncode != 0
    assert sql(envs, "beta").stdout.strip() == "42"

    # An app update is a start-first release through docker_rollout and the host's nginx.
    assert lab_exec(envs["host"], "curl -sf -o /dev/null http://127.0.0.1:%d/" % LISTEN["beta"]).returncode == 0
    registry = json.loads(
        lab_exec(envs["host"], "docker inspect $(docker ps -q --filter label=berth.env=beta --filter label=berth.service=db)").stdout
    )
    image = registry[0]["Config"]["Image"].rsplit("/env/", 1)[0] + "/env/app"
    lab_exec(envs["host"], "docker tag %s:1 %s:2 && docker push -q %s:2" % (image, image, image), check=True)
    update = create(envs, definition("beta", envs["host"], app_image="env/app:2"))
    assert update.returncode == 0, update.explain()
    assert update.changed()[envs["host"]] >= 1, update.explain()
    assert in_app(envs, "beta", "true").returncode == 0
    serving = lab_exec(
        envs["host"], "docker ps --filter label=berth.env=beta --filter label=berth.service=app --format '{{.Image}}'"
    ).stdout.split()
    assert serving == [image + ":2"]
    assert sql(envs, "beta").stdout.strip() == "42"

    # gamma reaches beta's services over beta's network; releasing beta cuts gamma off cleanly.
    # A name both environments use would resolve to either over the joined network.
    gamma = {"env": {"name": "gamma", "hosts": [envs["host"]], "reach": ["beta"], "services": {"cache": SERVICES["cache"]}}}
    clash = create(envs, gamma)
    assert clash.returncode != 0 and clash.total_changed() == 0
    assert "reach: beta also has service(s) cache" in " ".join(clash.output.split()), clash.explain()
    gamma["env"]["services"] = {"probe": SERVICES["cache"]}
    created = create(envs, gamma)
    assert created.returncode == 0, created.explain()
    cache = json.loads(lab_exec(envs["host"], inspect.replace("-db ", "-cache "), check=True).stdout)["berth-env-beta"]["IPAddress"]
    ping = "docker exec berth-env-gamma-probe redis-cli -h %s ping" % cache
    assert lab_exec(envs["host"], ping).stdout.strip() == "PONG"

    down = teardown(envs, "beta")
    assert down.returncode == 0, down.explain()
    assert lab_exec(envs["host"], ping).stdout.strip() != "PONG"
    assert lab_exec(envs["host"], "docker exec berth-env-gamma-probe redis-cli ping").stdout.strip() == "PONG"
    assert teardown(envs, "gamma").returncode == 0
    assert objects(lab) == empty
    assert firewall_openings(envs) == []


def env_files(envs, env):
    """berth's files of an environment on its host: nginx entries (with
    docker_rollout's hidden record of what nginx took) and rollout state."""
    find = "find /etc/nginx /var/lib/berth -name '*env.%s.*' 2>/dev/null" % env
    return sorted(lab_exec(envs["host"], find).stdout.split())


def test_a_teardown_killed_half_way_is_finished_by_the_next(envs):
    # kill -9 of the control node once the files are gone and the Docker
    # objects are being removed: the next teardown finds the rest by label.
    lab = envs["lab"]
    empty = objects(lab)
    spec = definition("delta", envs["host"])
    services = spec["env"]["services"]
    del services["db"]
    services["app"].update({"env": {"INI_CMD": "true"}, "depends_on": ["cache"]})
    created = create(envs, spec)
    assert created.returncode == 0, created.explain()
    assert env_files(envs, "delta") and firewall_openings(envs) == ["env.delta"]

    run = Background(lab, "playbooks/env_teardown.yml", "-e", "env_name=delta")
    try:
        assert wait_for(lambda: "Remove its containers]" in run.output(), timeout=600, step=0.2), run.output()[-3000:]
        run.kill()
    finally:
        run.close()
    assert env_files(envs, "delta") == [] and firewall_openings(envs) == []
    assert objects(lab) != empty  # cut short: its network at least is still there

    again = teardown(envs, "delta")
    assert again.returncode == 0, again.explain()
    assert objects(lab) == empty
    assert env_files(envs, "delta") == [] and firewall_openings(envs) == []
    address = lab.hosts[envs["host"]]
    assert lab_exec(envs["neighbour"], "curl -sf -m 5 -o /dev/null http://%s:%d/" % (address, LISTEN.get("delta", 18089))).returncode != 0
