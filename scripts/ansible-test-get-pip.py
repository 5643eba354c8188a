"""Stand-in for the get-pip bootstrap that ansible-test downloads from a host
these machines cannot reach. ansible-test runs it inside a fresh virtualenv
with pip's arguments (e.g. `pip==24.2 --no-setuptools --no-wheel`): pip
comes from Python's own ensurepip, then the requested pip from the index.
scripts/sanity.sh puts it where ansible-test looks for its cached copy."""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
# ansible-test hides pip's configuration files (PIP_CONFIG_FILE=/dev/null).
# The pip that ensurepip brings trusts only its own CA list, so this one
# call reads the machine's pip configuration (index, CA bundle) again; the
# requested pip uses the system's trust store by itself.
env = {key: value for key, value in os.environ.items() if key != "PIP_CONFIG_FILE"}
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args], env=env)
