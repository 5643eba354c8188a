#!/usr/bin/python
"""A builder's build queue: reserve a ticket, wait for a slot, give it back."""

DOCUMENTATION = r"""
---
module: build_slot
short_description: Tickets and slots in a builder's build queue
description:
  - Each builder runs at most I(max_concurrent) builds at once. A build takes a ticket in the builder's queue (a
    directory of small files on the host, under C(/run) by default) and waits for a slot in arrival order.
  - C(state=reserve) adds a ticket with a lease and reports the queue, including which tickets' base images this
    builder already holds, so that the filter M(berth.ops.berth_pick_builder) can choose a builder.
  - C(state=acquire) marks the ticket as sent to this builder, waits until it may start (fewer than
    I(max_concurrent) builds running or waiting ahead of it, and none of the same build context) and marks it
    running, or returns C(acquired=false) after I(wait_timeout). The lease then covers the steps before the build; the
    build module (M(berth.ops.docker_image_build) with I(slot_ticket)) holds the ticket's lock while it builds, so a
    build that fails or is killed frees its slot at once.
  - C(state=release) removes the ticket. C(state=status) only reads the queue.
  - A ticket whose lease is over and whose lock nobody holds is dead; any call removes it. A control node killed
    between C(acquire) and the build keeps the slot until the lease ends.
  - The queue is scratch state of one build, empty again when the build ends, so every call reports
    C(changed=false); C(queued), C(acquired) and C(released) say what it did. A new image is the build module's
    change, not the queue's.
  - Check mode reads the queue and says what would happen; it writes nothing and does not wait.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.docker
options:
  state:
    description: What to do with the ticket.
    type: str
    choices: [reserve, acquire, release, status]
    default: status
  ticket:
    description:
      - The build's ticket, the same on every builder of the pool. Lowercase letters, digits, C(.), C(_) and C(-).
      - Required unless I(state=status).
    type: str
  context:
    description: The build context the ticket builds in; two builds of one context never run at once on a builder.
    type: str
  base_image:
    description: The image the build starts from; a builder that holds it has the build's cache.
    type: str
  pool:
    description: Every builder the ticket is reserved on (C(state=reserve)), so that a build that looks at the queues
      while another build is still reserving knows where that one may go.
    type: list
    elements: str
    default: []
  max_concurrent:
    description: Slots of this builder, 1 to 64.
    type: int
    default: 2
  lease:
    description: Seconds a ticket counts without a process holding it (after reserve, and after acquire until the
      build starts), 10 to 86400.
    type: int
    default: 600
  wait_timeout:
    description:
      - Seconds one C(acquire) call waits for a slot, 1 to 86400. Without one it returns C(acquired=false) and the
        ticket keeps its place; call it again (C(until)) to wait longer.
      - A waiting ticket lives three times this long (at least 30 s) without another call, so the builds behind a
        control node that died while it waited move up soon.
    type: int
    default: 30
  poll:
    description: Seconds between looks at the queue while waiting, 0.1 to 10.
    type: float
    default: 0.5
  queue_dir:
    description: The queue's directory on the builder.
    type: path
    default: /run/berth/build-queue
"""

EXAMPLES = r"""
- name: Reserve a place on every builder of the pool
  berth.ops.build_slot:
    state: reserve
    ticket: "{{ build_ticket }}"
    context: app-web
    base_image: 10.77.1.11:5000/base/middleware:1
  register: build_queue

- name: Wait for a slot on the chosen builder
  berth.ops.build_slot:
    state: acquire
    ticket: "{{ build_ticket }}"
    context: app-web
"""

RETURN = r"""
ticket:
  description: The ticket as the queue holds it (or would, in check mode).
  returned: when a ticket is given and present
  type: dict
  sample: {id: web-8f2c41d09a7e, key: app-web, state: running, created: 1764770000.5, lease_until: 1764770600.5}
tickets:
  description: The live tickets of this builder, oldest first, each with C(affinity) true when this builder holds
    the ticket's base image.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: web-8f2c41d09a7e, key: app-web, state: running, pool: [b1, b2], created: 1764770000.5, lease_until: 0, affinity: true}
max_concurrent:
  description: This builder's slots.
  returned: always
  type: int
  sample: 2
running:
  description: Builds running on this builder now.
  returned: always
  type: int
  sample: 1
queued:
  description: Whether C(reserve) added the ticket (in check mode, would add it).
  returned: when state=reserve
  type: bool
  sample: true
acquired:
  description: Whether the ticket holds a slot now (in check mode, could take one now).
  returned: when state=acquire
  type: bool
  sample: true
released:
  description: Whether C(release) removed a live ticket.
  returned: when state=release
  type: bool
  sample: false
at:
  description: When the call ended, in seconds since the epoch on the builder (for C(acquire), when the slot was
    taken).
  returned: always
  type: float
  sample: 1764770012.5
waited:
  description: Seconds C(acquire) waited for its slot.
  returned: when state=acquire
  type: float
  sample: 12.5
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue import may_start, option_errors, ordered
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue_client import BuildQueueClient

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


def held_images(module, refs):
    """Which of these image references the builder's engine holds; none when
    the engine cannot be asked (affinity is a preference, not a need)."""
    if not refs or not HAS_DOCKER:
        return set()
    try:
        client = docker.APIClient(base_url=module.params["docker_host"], version="auto", timeout=30)
    except docker.errors.DockerException:
        return set()
    found = set()
    for ref in refs:
        try:
            client.inspect_image(ref)
            found.add(ref)
        except docker.errors.DockerException:
            pass
    return found


def snapshot(module, tickets, ticket_id):
    """What the module returns about the queue."""
    tickets = ordered(tickets)
    held = held_images(module, sorted({t["base_image"] for t in tickets if t.get("base_image")}))
    listed = [dict(t, affinity=t.get("base_image") in held) for t in tickets]
    return {
        "tickets": listed,
        "ticket": next((t for t in listed if t["id"] == ticket_id), None),
        "max_concurrent": module.params["max_concurrent"],
        "running": sum(1 for t in tickets if t["state"] == "running"),
    }


def new_ticket(p, now, state="reserved"):
    return {
        "id": p["ticket"],
        "key": p["context"] or p["ticket"],
        "base_image": p["base_image"],
        "pool": sorted(p["pool"]),
        "state": state,
        "created": now,
        "lease_until": now + p["lease"],
    }


def reserve(module, queue):
    p = module.params
    now = time.time()
    tickets = queue.tickets(now)
    mine = next((t for t in tickets if t["id"] == p["ticket"]), None)
    queued = mine is None
    if mine is None:
        mine = new_ticket(p, now)
        tickets.append(mine)
        if not module.check_mode:
            queue.write(mine)
    return dict(snapshot(module, tickets, p["ticket"]), queued=queued)


def release(module, queue):
    p = module.params
    tickets = queue.tickets()
    present = any(t["id"] == p["ticket"] for t in tickets)
    if present and not module.check_mode:
        queue.remove(p["ticket"])
    return dict(snapshot(module, [t for t in tickets if t["id"] != p["ticket"]], None), released=present)


def waiting_lease(p):
    """How long a waiting ticket lives without another acquire call: a
    control node that died while its build waited stops renewing it, and
    the builds behind it move up within this time."""
    return max(3 * p["wait_timeout"], 30)


def acquire(module):
    """Wait in arrival order for a slot, at most wait_timeout seconds per
    call; a ticket that gets none keeps its place for the next call."""
    p = module.params
    started = time.monotonic()
    while True:
        with BuildQueueClient(p["queue_dir"], readonly=module.check_mode) as queue:
            now = time.time()
            tickets = queue.tickets(now)
            mine = next((t for t in tickets if t["id"] == p["ticket"]), None)
            if mine is None:
                # Its lease ran out (or it was never reserved): join at the end.
                mine = new_ticket(p, now, state="waiting")
                tickets.append(mine)
            if mine["state"] == "running":
                return dict(snapshot(module, tickets, p["ticket"]), acquired=True, waited=0.0)
            # Sent here: other builds now count it on this builder only, and
            # it queues from now.
            mine.setdefault("sent", now)
            mine.update(state="waiting", lease_until=now + waiting_lease(p))
            allowed, why = may_start(p["ticket"], tickets, p["max_concurrent"])
            if module.check_mode:
                return dict(snapshot(module, tickets, p["ticket"]), acquired=allowed, waited=0.0, would_wait=why)
            waited = round(time.monotonic() - started, 3)
            if allowed:
                # The lease covers the steps before the build takes the lock.
                mine.update(state="running", lease_until=now + p["lease"])
                queue.write(mine)
                return dict(snapshot(module, tickets, p["ticket"]), acquired=True, waited=waited)
            queue.write(mine)
            if waited >= p["wait_timeout"]:
                return dict(snapshot(module, tickets, p["ticket"]), acquired=False, waited=waited, would_wait=why)
        time.sleep(p["poll"])


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["reserve", "acquire", "release", "status"], "default": "status"},
            "ticket": {"type": "str"},
            "context": {"type": "str"},
            "base_image": {"type": "str"},
            "pool": {"type": "list", "elements": "str", "default": []},
            "max_concurrent": {"type": "int", "default": 2},
            "lease": {"type": "int", "default": 600},
            "wait_timeout": {"type": "int", "default": 30},
            "poll": {"type": "float", "default": 0.5},
            "queue_dir": {"type": "path", "default": "/run/berth/build-queue"},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    errors = option_errors(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    p = module.params
    if p["state"] == "acquire":
        result = acquire(module)
    else:
        with BuildQueueClient(p["queue_dir"], readonly=module.check_mode) as queue:
            if p["state"] == "reserve":
                result = reserve(module, queue)
            elif p["state"] == "release":
                result = release(module, queue)
            else:
                result = snapshot(module, queue.tickets(), p["ticket"])
    module.exit_json(changed=False, at=round(time.time(), 3), **result)


if __name__ == "__main__":
    main()
