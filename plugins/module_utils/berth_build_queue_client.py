"""A client for a builder's build queue: a directory of tickets on the host
(by default under /run, so a reboot empties it). Each ticket is a JSON file
and a lock file beside it; a build holds the lock while it runs, so a build
that dies frees its slot at once. Changes happen under the directory's own
lock. The rules are in berth_build_queue."""

import fcntl
import json
import os
import time

from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue import is_live


class BuildQueueClient:
    def __init__(self, directory, readonly=False):
        """`readonly` (check mode): create nothing, remove nothing."""
        self.directory = directory
        self.readonly = readonly
        self._guard = None

    def __enter__(self):
        guard = os.path.join(self.directory, ".queue.lock")
        if self.readonly:
            if os.path.exists(guard):
                self._guard = os.open(guard, os.O_RDONLY)
                fcntl.flock(self._guard, fcntl.LOCK_SH)
            return self
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._guard = os.open(guard, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._guard, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self._guard is not None:
            os.close(self._guard)
        self._guard = None

    def _path(self, ticket_id, suffix):
        return os.path.join(self.directory, ticket_id + suffix)

    def _held(self, ticket_id):
        """Whether a process holds the ticket's lock (a running build)."""
        try:
            fd = os.open(self._path(ticket_id, ".lock"), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def tickets(self, now=None):
        """The live tickets; dead ones (lease over, lock free) are removed."""
        now = time.time() if now is None else now
        found = []
        if not os.path.isdir(self.directory):
            return found
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(".json"):
                continue
            ticket_id = name[: -len(".json")]
            try:
                with open(self._path(ticket_id, ".json"), encoding="utf-8") as stream:
                    ticket = json.load(stream)
            except (OSError, ValueError):
                continue
            if is_live(ticket, now, {ticket_id} if self._held(ticket_id) else set()):
                found.append(ticket)
            elif not self.readonly:
                self.remove(ticket_id)
        return found

    def write(self, ticket):
        path = self._path(ticket["id"], ".json")
        with open(path + ".tmp", "w", encoding="utf-8") as stream:
            json.dump(ticket, stream)
        os.replace(path + ".tmp", path)
        if not os.path.exists(self._path(ticket["id"], ".lock")):
            os.close(os.open(self._path(ticket["id"], ".lock"), os.O_RDWR | os.O_CREAT, 0o600))

    def remove(self, ticket_id):
        """True when there was a ticket to remove."""
        removed = False
        for suffix in (".json", ".lock"):
            try:
                os.unlink(self._path(ticket_id, suffix))
                removed = True
            except FileNotFoundError:
                pass
        return removed


def hold(directory, ticket_id):
    """Take a running ticket's lock for the life of this process and end its
    lease, so the slot is freed the moment the process ends, however it ends.
    Returns the open lock (keep it), or None when the ticket is not running
    here."""
    try:
        fd = os.open(os.path.join(directory, ticket_id + ".lock"), os.O_RDWR)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    with BuildQueueClient(directory) as queue:
        ticket = next((t for t in queue.tickets() if t["id"] == ticket_id), None)
        if ticket is None or ticket["state"] != "running":
            os.close(fd)
            return None
        ticket["lease_until"] = 0
        queue.write(ticket)
    return fd
