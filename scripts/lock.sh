#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml, with hashes, for every platform:
#   requirements.lock      runtime dependencies (the Docker image installs these)
#   requirements-dev.lock  runtime + the dev extra, at the same runtime versions
#                          (scripts/setup.sh, and so CI, install these)
# Usage: scripts/lock.sh               keep every pin that still satisfies pyproject.toml
#        scripts/lock.sh --upgrade     move every pin to its newest allowed release
#        scripts/lock.sh --upgrade-package fastapi
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UV="$(command -v uv || true)"
[[ -n "$UV" ]] || UV="$VENV/bin/uv"
[[ -x "$UV" ]] || die "uv not found: run scripts/setup.sh first (it installs uv into $VENV)"

cd "$ROOT"
common=(--universal --python-version 3.11 --generate-hashes --quiet
    --custom-compile-command "scripts/lock.sh")
"$UV" pip compile pyproject.toml "${common[@]}" -o requirements.lock "$@"
"$UV" pip compile pyproject.toml --extra dev -c requirements.lock "${common[@]}" \
    -o requirements-dev.lock "$@"
log "lock files written: requirements.lock, requirements-dev.lock (commit both)"
