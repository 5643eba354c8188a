"""The build pool's rules, with no I/O: when a build on a builder may start,
and which builder of the pool a build goes to.

Each builder keeps a queue of tickets (berth_build_queue_client). A build
reserves a ticket on every builder of its pool, is sent to one, and gives
the others back. A ticket is `reserved` (not yet sent to a builder),
`waiting` (sent to this builder) or `running` (holding one of the
builder's `max_concurrent` slots); it counts
while its lease lasts or while a process holds its lock."""

import re

# reserved: placed in the queues of the pool, not yet sent; waiting: sent to
# this builder, waiting for a slot; running: holding a slot.
STATES = ("reserved", "waiting", "running")
TICKET_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,95}$")
# Ranges the module refuses outside of: a slot count a host can honour,
# leases from ten seconds to a day.
LIMITS = {"max_concurrent": (1, 64), "lease": (10, 86400), "wait_timeout": (1, 86400), "poll": (0.1, 10)}


def ticket_error(ticket, field="ticket"):
    """Why `ticket` is not a ticket id, naming the option, or None."""
    if ticket is None or TICKET_ID.match(str(ticket)):
        return None
    return "%s %r: use lowercase letters, digits, '.', '_' and '-' (at most 96), starting with a letter or digit" % (field, ticket)


def option_errors(options):
    """What is wrong with a build_slot task's options, each naming its option."""
    errors = []
    error = ticket_error(options.get("ticket"))
    if error:
        errors.append(error)
    if options.get("state") in ("reserve", "acquire", "release") and not options.get("ticket"):
        errors.append("ticket: required with state=%s" % options["state"])
    for name, (low, high) in sorted(LIMITS.items()):
        value = options.get(name)
        if value is not None and not low <= value <= high:
            errors.append("%s: %s is out of range (%s to %s)" % (name, value, low, high))
    return errors


def is_live(ticket, now, held):
    """A ticket counts while its lease lasts or while its lock is held."""
    return ticket["id"] in held or ticket.get("lease_until", 0) > now


def ordered(tickets):
    """Arrival order: the earliest reservation first, the id breaking ties."""
    return sorted(tickets, key=lambda t: (t["created"], t["id"]))


def sent_order(ticket):
    """Where a ticket sent to a builder stands in its wait queue."""
    return (ticket.get("sent", ticket["created"]), ticket["created"], ticket["id"])


def may_start(ticket_id, tickets, max_concurrent):
    """(True, None) when the build of `ticket_id` may take a slot now, else
    (False, why). `tickets` are the builder's live tickets. Builds sent here
    start in the order they were sent (`sent`), at most `max_concurrent` at once, and never two
    at a time in the same build context (`key`)."""
    mine = next((t for t in tickets if t["id"] == ticket_id), None)
    if mine is None:
        return False, "ticket %s is not in the queue" % ticket_id
    if mine["state"] == "running":
        return True, None
    running = [t for t in tickets if t["state"] == "running" and t["id"] != ticket_id]
    # Only builds sent here wait ahead, in the order they were sent: a
    # reservation may go elsewhere, and one a dead control node left must
    # not hold the queue for its lease.
    ahead = [t for t in tickets if t["state"] == "waiting" and sent_order(t) < sent_order(mine)]
    if any(t.get("key") == mine.get("key") for t in running + ahead):
        return False, "a build of the same context (%s) is ahead" % mine.get("key")
    if len(running) + len(ahead) >= max_concurrent:
        return False, "%d running and %d ahead, %d slot(s)" % (len(running), len(ahead), max_concurrent)
    return True, None


def _fleet_tickets(builders):
    """Every ticket seen on any builder: where it is reserved, where it runs,
    and its earliest reservation time."""
    tickets = {}
    for host in sorted(builders):
        for ticket in builders[host]["tickets"]:
            seen = tickets.setdefault(
                ticket["id"], {"id": ticket["id"], "key": ticket.get("key"), "created": ticket["created"], "on": set(), "sent": None}
            )
            seen["created"] = min(seen["created"], ticket["created"])
            # A ticket reserves on its whole pool at once; one seen on a single
            # builder may still be on its way to the others.
            seen["on"] |= set(ticket.get("pool") or [host]) & set(builders) | {host}
            if ticket["state"] in ("waiting", "running"):
                seen["sent"] = (host, ticket["state"])
    for seen in tickets.values():
        seen["on"] = sorted(seen["on"])
    return ordered(tickets.values())


def pick(builders, ticket_id):
    """The builder for the build of `ticket_id`, and why.

    `builders` maps each builder of the pool to {"max_concurrent": n,
    "tickets": [...]}, its live tickets, each with its `pool` (the builders
    it reserved on) and `affinity`, true when that builder already holds the
    image the ticket's build starts from.

    Every build places the earlier builds the same way before itself, so
    builds that reserved at the same moment spread over the pool instead of
    all choosing the builder that looked idle. Rules, in order:
    - a build already sent to a builder (waiting or running) stays there;
      one whose pool is a single builder goes there;
    - a builder with a free slot, where no build of the same context is
      placed, wins; among those, the one that holds the build's base image
      (cache affinity), then the least loaded;
    - when all are full, the shortest queue per slot, then affinity;
    - the builder's name breaks ties, so every build decides alike."""
    tickets = _fleet_tickets(builders)
    # Running builds hold their slots whenever they arrived.
    placed = {host: [t["key"] for t in tickets if t["sent"] and t["sent"] == (host, "running")] for host in builders}
    affinity = {host: {t["id"] for t in builders[host]["tickets"] if t.get("affinity")} for host in builders}
    for ticket in tickets:
        if ticket["sent"]:
            host, state = ticket["sent"]
            if state == "waiting":
                placed[host].append(ticket["key"])
            if ticket["id"] == ticket_id:
                return host, "%s there" % ("runs" if state == "running" else "waits")
            continue
        host, why = _place(ticket, builders, placed, affinity)
        placed[host].append(ticket["key"])
        if ticket["id"] == ticket_id:
            return host, why
    raise ValueError("ticket %s is not reserved on any builder of the pool (%s)" % (ticket_id, ", ".join(sorted(builders))))


def _place(ticket, builders, placed, affinity):
    if len(ticket["on"]) == 1:
        return ticket["on"][0], "the only builder of its pool that answered"
    slots = {host: builders[host]["max_concurrent"] for host in ticket["on"]}
    load = {host: len(placed[host]) for host in ticket["on"]}
    free = [host for host in ticket["on"] if load[host] < slots[host] and ticket["key"] not in placed[host]]
    if free:
        host = min(free, key=lambda h: (ticket["id"] not in affinity[h], load[h], h))
        if ticket["id"] in affinity[host]:
            return host, "holds the base image and has a free slot (%d of %d busy)" % (load[host], slots[host])
        return host, "least loaded with a free slot (%d of %d busy)" % (load[host], slots[host])
    host = min(ticket["on"], key=lambda h: (load[h] / slots[h], ticket["id"] not in affinity[h], h))
    return host, "every builder is full; shortest queue (%d builds for %d slot(s))" % (load[host], slots[host])


def pick_builder(pool, hostvars, ticket_id, register="build_queue"):
    """pick() over the registered build_slot reserve results of the pool's
    builders; a builder without a result (unreachable, failed) is left out.
    Returns {"host", "why", "answered"}."""
    builders = {}
    for host in pool:
        result = (hostvars.get(host) or {}).get(register) or {}
        if "tickets" in result and not result.get("failed"):
            builders[host] = {"max_concurrent": result["max_concurrent"], "tickets": result["tickets"]}
    if not builders:
        raise ValueError("no builder of the pool (%s) answered" % ", ".join(pool))
    host, why = pick(builders, ticket_id)
    return {"host": host, "why": why, "answered": sorted(builders)}
