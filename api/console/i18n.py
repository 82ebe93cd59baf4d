"""Vietnamese and English: gettext catalogs (Babel) and locale-aware numbers and dates.

One Jinja environment per language, each with its catalog installed, built once per
process. Catalogs live in api/console/locale (messages.pot, {vi,en}/LC_MESSAGES);
`scripts/console_i18n.sh` extracts and compiles them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
TEMPLATE_DIR = HERE / "templates"
LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"


def pick_locale(requested: str | None) -> str:
    return requested if requested in LOCALES else DEFAULT_LOCALE


def number(value: float | None, locale: str, digits: int = 2) -> str:
    """A figure as people of `locale` write it (vi: 1.234,56; en: 1,234.56)."""
    if value is None:
        return "–"
    return format_decimal(round(value, digits), format=f"#,##0.{'0' * digits}", locale=locale)


def percent(value: float | None, locale: str) -> str:
    if value is None:
        return "–"
    return format_percent(value, format="#,##0.0%", locale=locale)


def when(value: datetime | None, timezone: str, locale: str) -> str:
    """A time in the site's time zone, with its offset, in the locale's order."""
    if value is None:
        return "–"
    local = value.astimezone(ZoneInfo(timezone))
    return format_datetime(local, "dd/MM/yyyy HH:mm xxx", tzinfo=ZoneInfo(timezone), locale=locale)


def day(value: datetime, timezone: str, locale: str) -> str:
    return format_date(value.astimezone(ZoneInfo(timezone)).date(), "EEE dd/MM/yyyy", locale=locale)


def N_(message: str) -> str:
    """Marks a message for extraction that a template translates from a variable."""
    return message


# Values shown through `_(variable)` in templates: roles, alert states, meter kinds,
# notes after a form.
DYNAMIC = (
    N_("admin"),
    N_("operator"),
    N_("tenant"),
    N_("open"),
    N_("firing"),
    N_("acknowledged"),
    N_("resolved"),
    N_("all"),
    N_("already_acknowledged"),
    N_("recorded"),
    N_("exists"),
    N_("published"),
    N_("electricity"),
    N_("water"),
    N_("wastewater"),
    N_("natural_gas"),
    N_("diesel"),
    N_("lpg"),
    N_("solar"),
)


@cache
def translations(locale: str) -> Translations:
    found = Translations.load(str(LOCALE_DIR), [locale], domain="messages")
    if not isinstance(found, Translations):  # a missing .mo: fail loudly, not in English
        raise FileNotFoundError(f"no compiled catalog for {locale!r} in {LOCALE_DIR}")
    return found


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    env.filters["num"] = lambda v, digits=2: number(v, locale, digits)
    env.filters["pct"] = lambda v: percent(v, locale)
    env.filters["when"] = lambda v, tz: when(v, tz, locale)
    env.filters["day"] = lambda v, tz: day(v, tz, locale)
    env.filters["isoday"] = lambda v, tz: v.astimezone(ZoneInfo(tz)).date().isoformat()
    return env
