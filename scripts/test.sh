#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs the test suite: scripts/test.sh [pytest args]
# The exit code is pytest's.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VENV/bin/pytest" "$@"
