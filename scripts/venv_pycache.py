"""The project venv's copy of the lab hosts' bytecode cache for zipped
modules (images/host/berth_lab_pycache.py says why). Modules the controller
runs itself (delegate_to: localhost, the lab's and Molecule's Docker tasks)
are zipped as on a host and were compiled from source at every task. Here
the cache lives inside the venv, so `make clean` removes it with the venv.
Installed by scripts/venv.sh."""

import os
import sys

import berth_lab_pycache

berth_lab_pycache.CACHE = os.path.join(sys.prefix, "zip-pycache")
