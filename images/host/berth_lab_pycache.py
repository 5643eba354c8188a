"""The lab (its hosts and the project venv): a bytecode cache for the
Python that Ansible sends.

Every task ships its module and ansible's module_utils in a zip (AnsiballZ),
and zipimport compiles each file from source on every run, because it cannot
write .pyc files into a zip. On the lab's 2 shared cores that compile was
most of a module run's CPU time. This hook keeps the compiled code of a zip
member by the hash of its source, so a file is compiled once per host.

It changes how long an import takes, never what runs: the code object comes
from the same source. Real hosts have no such hook and compile every time;
the README says so where it gives timings. Loaded by berth_lab_pycache.pth
on a lab host, and by scripts/venv_pycache.py in the venv.
"""

import hashlib
import marshal
import os
import sys
import zipimport

CACHE = "/var/cache/berth-lab-pycache"
_compile = getattr(zipimport, "_compile_source", None)


def _cached_compile(pathname, source):
    # The member's path inside its zip: the zip itself is a new temp file per task.
    member = pathname.rsplit(".zip" + os.sep, 1)[-1]
    key = hashlib.sha256(sys.version.encode() + b"\0" + member.encode() + b"\0" + source).hexdigest()
    path = os.path.join(CACHE, key)
    try:
        with open(path, "rb") as stream:
            return marshal.load(stream)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _compile(pathname, source)
    try:
        os.makedirs(CACHE, mode=0o700, exist_ok=True)
        partial = "%s.%d" % (path, os.getpid())
        with open(partial, "wb") as stream:
            marshal.dump(code, stream)
        os.replace(partial, path)
    except OSError:
        pass  # a user who cannot write the cache compiles, as without it
    return code


if _compile is not None:
    zipimport._compile_source = _cached_compile
