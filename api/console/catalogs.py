"""Fills the catalogs' empty entries from texts_vi.py: `python -m api.console.catalogs`,
run by scripts/console_i18n.sh between `pybabel update` and `pybabel compile`."""

from __future__ import annotations

import sys

from babel.messages.pofile import read_po, write_po

from api.console.i18n import LOCALE_DIR
from api.console.texts_vi import EN, VI


def fill(lang: str, texts: dict[str, str]) -> list[str]:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    missing = []
    for message in catalog:
        if not message.id or message.string:
            continue
        if message.id in texts:
            message.string = texts[message.id]
        elif lang == "vi":
            missing.append(str(message.id))
    with path.open("wb") as f:
        write_po(f, catalog, no_location=True, width=100)
    return missing


if __name__ == "__main__":
    fill("en", EN)
    left = fill("vi", VI)
    if left:
        sys.exit("untranslated in vi: " + "; ".join(left))
