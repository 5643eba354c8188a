#!/usr/bin/env python3
"""Rewrites berth's references to its own content into the collection form:

- local modules by FQCN (task keys and module_defaults keys: berth.ops.X),
- local filters by FQCN (`| berth.ops.X`, `map('berth.ops.X')`),
- module_utils imported by collection path
  (ansible_collections.berth.ops.plugins.module_utils.X),
- playbooks under names that an FQCN can carry (berth.ops.image_cleanup
  needs playbooks/image_cleanup.yml): dashed playbooks are renamed with
  `git mv` and every reference to the old name is rewritten.

Idempotent: a second run changes nothing.

  scripts/fqcn_rename.py              rewrite the whole tree
  scripts/fqcn_rename.py PATH...      rewrite only these files (a dashed
                                      playbook among them is renamed)
  scripts/fqcn_rename.py --check      change nothing; list what is left and
                                      exit 1 if anything is
"""

import argparse
import ast
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "berth.ops."
TEXT_SUFFIXES = (".yml", ".yaml", ".j2", ".py", ".md", ".cfg", ".sh", ".txt", ".toml", ".ini")
TEXT_NAMES = ("Makefile", "run")
# History keeps the names it had; this script names both forms on purpose.
SKIP = ("changelogs/", "CHANGELOG.rst", "scripts/fqcn_rename.py")
TASK_DIRS = ("roles/", "playbooks/", "molecule/", "tests/")


def module_names():
    found = os.listdir(os.path.join(TOP, "plugins", "modules"))
    return sorted(name[:-3] for name in found if name.endswith(".py") and not name.startswith("_"))


def filter_names():
    """The names of the filter plugin's table (FILTERS), read without importing it."""
    with open(os.path.join(TOP, "plugins", "filter", "berth.py"), encoding="utf-8") as stream:
        tree = ast.parse(stream.read())
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "FILTERS")
    return sorted(ast.literal_eval(table))


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=TOP, capture_output=True, text=True, check=True).stdout
    return [path for path in out.splitlines() if not os.path.islink(os.path.join(TOP, path))]


def is_text(path):
    return path.endswith(TEXT_SUFFIXES) or os.path.basename(path) in TEXT_NAMES


def playbook_renames():
    """{old dashed name: underscore name} for every top-level playbook,
    whether it was already renamed or not."""
    renames = {}
    for name in os.listdir(os.path.join(TOP, "playbooks")):
        stem, ext = os.path.splitext(name)
        if ext == ".yml" and ("-" in stem or "_" in stem):
            renames[stem.replace("_", "-") + ext] = stem.replace("-", "_") + ext
    return renames


def rewriters(modules, filters, playbooks):
    module_key = re.compile(r"^(\s*(?:-\s+)?)(%s)(\s*:)" % "|".join(map(re.escape, modules)), re.MULTILINE)
    filter_pipe = re.compile(r"(\|\s*)(%s)\b" % "|".join(map(re.escape, filters)))
    filter_map = re.compile(r"(\bmap\(\s*['\"])(%s)(['\"])" % "|".join(map(re.escape, filters)))
    import_path = re.compile(r"\bansible\.module_utils\.(berth_\w+)")
    playbook = re.compile(r"(?<![\w.-])(%s)" % "|".join(map(re.escape, playbooks))) if playbooks else None

    def rewrite(path, text):
        if path.endswith((".yml", ".yaml")) and path.startswith(TASK_DIRS):
            text = module_key.sub(lambda m: m.group(1) + PREFIX + m.group(2) + m.group(3), text)
        if path.endswith((".yml", ".yaml", ".j2", ".py")):
            text = filter_pipe.sub(lambda m: m.group(1) + PREFIX + m.group(2), text)
            text = filter_map.sub(lambda m: m.group(1) + PREFIX + m.group(2) + m.group(3), text)
        if path.endswith(".py"):
            text = import_path.sub(r"ansible_collections.berth.ops.plugins.module_utils.\1", text)
        if playbook:
            text = playbook.sub(lambda m: playbooks[m.group(1)], text)
        return text

    return rewrite


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing, exit 1 if anything is left")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    os.chdir(TOP)

    renames = playbook_renames()
    dashed = {old: new for old, new in renames.items() if old != new and os.path.exists(os.path.join("playbooks", old))}
    chosen = [os.path.relpath(os.path.abspath(p), TOP) for p in args.paths] if args.paths else None
    left = []
    for old, new in sorted(dashed.items()):
        source = os.path.join("playbooks", old)
        if chosen is not None and source not in chosen:
            continue
        left.append("%s -> playbooks/%s" % (source, new))
        if not args.check:
            subprocess.run(["git", "mv", source, os.path.join("playbooks", new)], check=True)
            if chosen is not None:
                chosen.append(os.path.join("playbooks", new))

    rewrite = rewriters(module_names(), filter_names(), {old: new for old, new in renames.items() if old != new})
    paths = chosen if chosen is not None else tracked_files()
    for path in paths:
        if not os.path.isfile(path) or os.path.islink(path) or not is_text(path) or path.startswith(SKIP):
            continue
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
        new = rewrite(path, text)
        if new == text:
            continue
        left.append(path)
        if not args.check:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(new)

    for item in left:
        print(("left: " if args.check else "rewrote: ") + item)
    return 1 if args.check and left else 0


if __name__ == "__main__":
    sys.exit(main())
