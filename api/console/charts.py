"""Server-side SVG charts: pure functions from figures to markup, no JavaScript.

Charts scale with their container (viewBox, width 100%), so they read on a laptop
and a tablet alike. Every axis names its unit; callers pass times already in the
site's time zone and labels already translated. Text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48


@dataclass(frozen=True)
class Axis:
    label: str  # with its unit, e.g. "kgCO2e/h"


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above value (at least 1)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    while step > value:
        step /= 10
    for m in (1, 2, 5, 10):
        if step * m >= value:
            return step * m
    return step * 10


def _frame(x_axis: Axis, y_axis: Axis, top: float, fmt: object, title: str) -> list[str]:
    plot_h = H - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        v = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        label = fmt(v) if callable(fmt) else f"{v:g}"
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(str(label))}</text>"
        )
    parts.append(
        f'<text class="axis" x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_axis.label)}</text>'
        f'<text class="axis" x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 6}" '
        f'text-anchor="middle">{escape(x_axis.label)}</text>'
    )
    return parts


def bars_with_line(
    values: Sequence[float],
    line: Sequence[float],
    ticks: Sequence[tuple[int, str]],
    x_axis: Axis,
    y_axis: Axis,
    title: str,
    fmt: object = None,
) -> str:
    """Bars (e.g. hourly CO2e) with a stepped line across them (e.g. the budget);
    `ticks` are (index, label) pairs under the x axis."""
    n = max(len(values), 1)
    top = _nice_max(max([*values, *line, 0.0]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    bw = plot_w / n

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = _frame(x_axis, y_axis, top, fmt, title)
    for i, v in enumerate(values):
        parts.append(
            f'<rect class="bar" x="{LEFT + i * bw:.2f}" y="{y(v):.2f}" '
            f'width="{max(bw - 0.4, 0.4):.2f}" height="{TOP + plot_h - y(v):.2f}"/>'
        )
    if line:
        points = " ".join(
            f"{LEFT + i * bw:.2f},{y(v):.2f} {LEFT + (i + 1) * bw:.2f},{y(v):.2f}"
            for i, v in enumerate(line)
        )
        parts.append(f'<polyline class="budget" points="{points}"/>')
    for i, label in ticks:
        x = LEFT + i * bw
        parts.append(
            f'<line class="tickmark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" '
            f'y2="{TOP + plot_h + 4}"/><text class="tick" x="{x:.1f}" y="{TOP + plot_h + 18}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def lines_by_year(
    years: Sequence[int],
    target: Sequence[float],
    actual: Sequence[float | None],
    milestones: Sequence[int],
    x_axis: Axis,
    y_axis: Axis,
    title: str,
    fmt: object = None,
) -> str:
    """The roadmap: the target line over the years, actual points where known,
    and milestone years marked."""
    known = [a for a in actual if a is not None]
    top = _nice_max(max([*target, *known, 0.0]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(len(years) - 1, 1)

    def x(i: int) -> float:
        return LEFT + plot_w * i / n

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = _frame(x_axis, y_axis, top, fmt, title)
    path = " ".join(f"{x(i):.2f},{y(v):.2f}" for i, v in enumerate(target))
    parts.append(f'<polyline class="budget" points="{path}"/>')
    for i, year in enumerate(years):
        if year in milestones:
            parts.append(
                f'<circle class="milestone" cx="{x(i):.2f}" cy="{y(target[i]):.2f}" r="5"/>'
            )
        a = actual[i]
        if a is not None:
            parts.append(f'<circle class="actual" cx="{x(i):.2f}" cy="{y(a):.2f}" r="4"/>')
        if len(years) <= 12 or i % max(len(years) // 10, 1) == 0 or year in milestones:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{TOP + plot_h + 18}" '
                f'text-anchor="middle">{year}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
