#!/usr/bin/env python3
"""ansible-doc on every module and filter of berth.ops: fails on any error,
and on a module without EXAMPLES, RETURN samples or the check_mode, diff_mode
and platform attributes, or a filter of FilterModule without its YAML doc.

  scripts/doc_check.py [--skip NAME ...]   (NAME: a module left out for now)
"""

import argparse
import json
import os
import subprocess
import sys

from fqcn_rename import filter_names

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTRIBUTES = ("check_mode", "diff_mode", "platform")


def ansible_doc(kind, names):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"))
    proc = subprocess.run(["ansible-doc", "--json", "-t", kind, *names], cwd=TOP, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def module_problems(name, entry):
    doc = entry.get("doc") or {}
    problems = []
    if not entry.get("examples"):
        problems.append("no EXAMPLES")
    returns = entry.get("return") or {}
    if not returns:
        problems.append("no RETURN")
    problems += ["RETURN %s has no sample" % key for key, value in sorted(returns.items()) if "sample" not in value]
    attributes = doc.get("attributes") or {}
    problems += ["no %s attribute" % key for key in ATTRIBUTES if key not in attributes]
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[], help="module left out for now")
    args = parser.parse_args()
    modules = sorted(f[:-3] for f in os.listdir(os.path.join(TOP, "plugins", "modules")) if f.endswith(".py") and f[:-3] not in args.skip)
    filters = filter_names()
    failures = []
    for kind, names in (("module", modules), ("filter", filters)):
        # ansible-doc skips a plugin whose doc is broken, says why on stderr,
        # and goes on with the rest: a name missing from the output failed.
        code, out, err = ansible_doc(kind, ["berth.ops." + name for name in names])
        found = json.loads(out or "{}")
        for name in names:
            entry = found.get("berth.ops." + name)
            if entry is None:
                said = [line for line in err.splitlines() if "berth.ops." + name in line]
                failures.append("%s %s: %s" % (kind, name, said[0] if said else "not rendered (exit %d)" % code))
                continue
            problems = module_problems(name, entry) if kind == "module" else ([] if entry.get("examples") else ["no EXAMPLES"])
            failures += ["%s %s: %s" % (kind, name, problem) for problem in problems]
    for failure in failures:
        print(failure)
    print("ansible-doc: %d modules, %d filters, %d problems" % (len(modules), len(filters), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
