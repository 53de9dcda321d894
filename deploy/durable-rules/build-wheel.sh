#!/usr/bin/env bash
# Builds durable-rules 2.0.28 with uythac's fixes (fixes.patch: why) as a wheel in DIR, versioned
# 2.0.28+uythac.1 so that the pin `durable-rules==2.0.28` still matches it and pip prefers it to PyPI's.
#   deploy/durable-rules/build-wheel.sh DIR [PYTHON]
# Needs gcc (Debian: build-essential), as durable-rules always did: PyPI has only its source.
set -euo pipefail

VERSION=2.0.28
LOCAL=uythac.1
SHA256=053b26f5e48d312d4fa27995243f954671be6eece477f150c059c364eb4d7d61
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:?usage: build-wheel.sh DIR [PYTHON]}"
PYTHON="${2:-python3}"

fail() { echo "durable-rules: $*" >&2; exit 1; }

mkdir -p "$DIR" || fail "cannot create $DIR"
DIR="$(cd "$DIR" && pwd)"
if compgen -G "$DIR/durable_rules-$VERSION+$LOCAL-*.whl" >/dev/null; then
    exit 0
fi
command -v gcc >/dev/null || fail "gcc is missing (Debian: apt-get install build-essential)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip download -q --no-deps --no-binary :all: --dest "$WORK" "durable-rules==$VERSION" \
    || fail "cannot download durable-rules $VERSION from PyPI"
SDIST="$WORK/durable_rules-$VERSION.tar.gz"
echo "$SHA256  $SDIST" | sha256sum --check --status || fail "durable_rules-$VERSION.tar.gz: sha256 differs"
tar -xzf "$SDIST" -C "$WORK"
SRC="$WORK/durable_rules-$VERSION"
(cd "$SRC" && git apply -p1 "$HERE/fixes.patch") || fail "fixes.patch does not apply"
sed -i "s/version = '$VERSION'/version = '$VERSION+$LOCAL'/" "$SRC/setup.py"
grep -q "$VERSION+$LOCAL" "$SRC/setup.py" || fail "setup.py: version line not found"
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$DIR" "$SRC" || fail "the build failed (see above)"
echo "durable-rules $VERSION+$LOCAL: $(ls "$DIR"/durable_rules-"$VERSION+$LOCAL"-*.whl)"
