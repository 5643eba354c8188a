"""Shared test set-up: the repo is the collection berth.ops, and
collections/ansible_collections/berth/ops links back to it, so tests import
module_utils by the same collection path that modules and filters use."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
