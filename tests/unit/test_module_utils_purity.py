"""Clients are named as clients, so "pure" means pure (issue 14): a
module_utils file that is not a client (berth_*_client) or the HTTP
transport (berth_http) imports nothing that does I/O and does none itself.
Read from the source, so a new I/O import fails here before a lab run."""

import ast
import os

import pytest

MODULE_UTILS = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "module_utils")
TRANSPORTS = {"berth_http"}
# What pure code may import: computation only, no files, processes, sockets or clocks.
ALLOWED_IMPORTS = {
    "calendar",
    "collections",
    "contextlib",
    "copy",
    "datetime",
    "fnmatch",
    "hashlib",
    "heapq",
    "ipaddress",
    "json",
    "math",
    "os",  # for os.path's string functions only, checked below
    "re",
    "string",
    "ansible.module_utils.six.moves.urllib.parse",
}
PATH_FUNCTIONS = {"basename", "dirname", "join", "normpath"}


def names():
    found = sorted(f[:-3] for f in os.listdir(MODULE_UTILS) if f.endswith(".py") and f != "__init__.py")
    return [n for n in found if not n.endswith("_client") and n not in TRANSPORTS]


def is_pure_import(module):
    if module in ALLOWED_IMPORTS:
        return True
    prefix = "ansible_collections.berth.ops.plugins.module_utils."
    return module.startswith(prefix) and module[len(prefix) :] in names()


def problems(name):
    with open(os.path.join(MODULE_UTILS, name + ".py"), encoding="utf-8") as stream:
        tree = ast.parse(stream.read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += ["imports %s" % alias.name for alias in node.names if not is_pure_import(alias.name)]
        elif isinstance(node, ast.ImportFrom) and not is_pure_import(node.module):
            found.append("imports from %s" % node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append("calls open() on line %d" % node.lineno)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" and node.attr != "path":
            found.append("uses os.%s on line %d" % (node.attr, node.lineno))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and (node.value.value.id, node.value.attr) == ("os", "path")
            and node.attr not in PATH_FUNCTIONS
        ):
            found.append("uses os.path.%s on line %d" % (node.attr, node.lineno))
    return found


def test_the_split_modules_are_checked():
    assert {"berth_registry", "berth_rancher", "berth_switch", "berth_build"} <= set(names())


@pytest.mark.parametrize("name", names())
def test_pure_module_utils_do_no_io(name):
    assert problems(name) == []


def test_the_check_sees_io():
    for client in ("berth_registry_client", "berth_rancher_client", "berth_switch_client"):
        assert problems(client), client
