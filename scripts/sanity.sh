#!/usr/bin/env bash
# ansible-test sanity on the collection as users get it: build the tarball
# (make collection), install it into a throw-away ansible_collections tree
# and run the tests there. Extra arguments go to ansible-test, e.g.
#   scripts/sanity.sh --test validate-modules
# Each test's own virtualenv is cached by ansible-test under
# ~/.ansible/test/venv, keyed by the hash of its pinned requirements.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
python=${BERTH_SANITY_PYTHON:-3.11}

die() {
  echo "berth: $*" >&2
  exit 1
}

# ansible-test bootstraps pip in each venv with a script it downloads from a
# host out of reach here; give it the stand-in under the name it caches.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$(python3 -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -1)
[ -n "$pip_version" ] || die "cannot tell which pip ansible-test bootstraps"
get_pip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if ! cmp -s "$top/scripts/ansible-test-get-pip.py" "$get_pip"; then
  mkdir -p "$(dirname "$get_pip")"
  cp "$top/scripts/ansible-test-get-pip.py" "$get_pip"
fi

tarball=$("$top/scripts/collection.sh" build)
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
ANSIBLE_COLLECTIONS_PATH=$work ansible-galaxy collection install --offline --no-deps --force -p "$work" "$tarball" >/dev/null ||
  die "installing $tarball failed"
cd "$work/ansible_collections/berth/ops"
ansible-test sanity --color no --local --python "$python" "$@"
