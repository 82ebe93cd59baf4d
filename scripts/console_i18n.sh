#!/usr/bin/env bash
# The console's translations: extract the messages of api/console into messages.pot,
# merge them into the vi and en catalogs, and compile the .mo files (committed, so an
# install needs no build step). Run after changing a page's text; then translate the
# new entries of api/console/locale/vi/LC_MESSAGES/messages.po and run it again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
LOCALE=api/console/locale
"$PYBABEL" extract -F api/console/babel.cfg -k N_ -k _ --no-location --sort-output \
    --project park-emissions -o "$LOCALE/messages.pot" .
for lang in vi en; do
    if [[ -f "$LOCALE/$lang/LC_MESSAGES/messages.po" ]]; then
        "$PYBABEL" update -i "$LOCALE/messages.pot" -d "$LOCALE" -l "$lang" --no-fuzzy-matching
    else
        "$PYBABEL" init -i "$LOCALE/messages.pot" -d "$LOCALE" -l "$lang"
    fi
done
"${PYTHON:-.venv/bin/python}" -m api.console.catalogs
"$PYBABEL" compile -d "$LOCALE" --statistics
