"""The inventory as one printable HTML page (print it, or save it as PDF from a
browser). The template engine escapes every value; the page loads nothing."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reports.model import Inventory

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} %"


_ENV.filters["num"] = _num
_ENV.filters["pct"] = _pct


def inventory_html(report: Inventory) -> str:
    return _ENV.get_template("inventory.html").render(r=report)
