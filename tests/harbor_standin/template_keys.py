"""Key paths of Harbor's harbor.yml template, commented-out settings included,
for tests that check berth renders only keys Harbor knows."""

import os
import re

import yaml

from .swagger import reference_file

TEMPLATE_NAME = "harbor.yml-v2.15.2.tmpl"
# A YAML key; prose after a "#" starts upper case or has spaces before a colon.
KEY = re.compile(r"^(\s*)([a-z_][A-Za-z0-9_]*):(?:\s|$)")
COMMENT = re.compile(r"^(\s*)#\s?(.*)$")


def template_keys(text):
    paths, stack = set(), []
    for line in text.splitlines():
        match = COMMENT.match(line)
        while match:  # uncomment, keeping the indentation
            line = match.group(1) + match.group(2)
            match = COMMENT.match(line)
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        paths.add(".".join(key for _, key in stack))
    return paths


def shipped_passwords():
    """The admin and database passwords Harbor's template ships with."""
    with open(os.path.join(os.path.dirname(reference_file()), TEMPLATE_NAME), encoding="utf-8") as handle:
        template = yaml.safe_load(handle)
    return template["harbor_admin_password"], template["database"]["password"]


def reference_keys():
    with open(os.path.join(os.path.dirname(reference_file()), TEMPLATE_NAME), encoding="utf-8") as handle:
        return template_keys(handle.read())
