"""One simulated week of the sample park, as docs/simulated-week.png.

    .venv/bin/python docs/plot_profiles.py [--seed 1] [--start 2026-06-01] [--out PATH]

Grid electricity (kW, hourly means of the main meters: load minus rooftop solar) of
three enterprises and of the whole park, plus the park's rooftop solar generation.
Uses the simulator's pure generator (`simulator.generate.readings`): no broker or
database needed. Needs matplotlib (the dev extra).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from core.meter_kinds import MeterKind  # noqa: E402
from core.park.loader import load_park  # noqa: E402
from core.park.models import Park  # noqa: E402
from simulator.generate import readings  # noqa: E402

SHOWN = {
    "NCK-STL1": "Steel structures (two shifts, 6 days; 1 MWp rooftop PV)",
    "NCK-GAR1": "Garments (day shift, Saturday half day; 600 kWp PV)",
    "NCK-FOOD1": "Seafood processing (early-morning peak, refrigeration 24/7)",
}


def hourly_kw(park: Park, start: datetime, end: datetime, seed: int) -> dict[str, list[float]]:
    """kWh per hour (= mean kW) of each main grid meter and each solar meter."""
    wanted = {
        m.id: m
        for _, _, m in park.meters()
        if m.parent is None and m.kind in (MeterKind.electricity, MeterKind.solar)
    }
    hours = int((end - start).total_seconds() // 3600)
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * hours)
    last: dict[str, float] = {}
    for r in readings(park, start, end, seed=seed, interval_s=300):
        meter = wanted.get(r.meter_id)
        if meter is None:
            continue
        ts = r.ts.timestamp()
        if r.meter_id in last:
            used = r.value - last[r.meter_id]
            if used < 0 and meter.rollover:
                used += meter.rollover
            slot = int((ts - start.timestamp()) // 3600)
            if 0 <= slot < hours:
                out[r.meter_id][slot] += used
        last[r.meter_id] = r.value
    return out


def plot(park: Park, first_day: date, seed: int, path: Path) -> None:
    tz = ZoneInfo(park.sites[0].timezone)
    start = datetime.combine(first_day, datetime.min.time(), tz)
    end = start + timedelta(days=7)
    data = hourly_kw(park, start, end, seed)
    times = [start + timedelta(hours=h, minutes=30) for h in range(7 * 24)]
    meters = {m.id: (e.id, m) for _, e, m in park.meters()}
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True)
    for ax, (ent_id, title) in zip(axes[:3], SHOWN.items(), strict=True):
        for meter_id, series in sorted(data.items()):
            owner, meter = meters[meter_id]
            if owner != ent_id:
                continue
            style = "--" if meter.kind is MeterKind.solar else "-"
            label = "rooftop solar" if meter.kind is MeterKind.solar else "grid (main meter)"
            ax.plot(times, series, style, lw=1.2, label=f"{meter_id}: {label}")
        ax.set_title(f"{ent_id}: {title}", fontsize=10, loc="left")
        ax.set_ylabel("kW")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    grid = [0.0] * len(times)
    solar = [0.0] * len(times)
    for meter_id, series in data.items():
        target = solar if meters[meter_id][1].kind is MeterKind.solar else grid
        for i, v in enumerate(series):
            target[i] += v
    ax = axes[3]
    ax.plot(times, [v / 1000 for v in grid], lw=1.4, label="grid electricity, main meters")
    ax.plot(times, [v / 1000 for v in solar], "--", lw=1.2, label="rooftop solar (4.1 MWp)")
    mean = sum(grid) / len(grid) / 1000
    ax.axhline(mean, color="grey", lw=0.8, ls=":", label=f"week mean {mean:.2f} MW")
    ax.set_title(f"Park total ({park.sites[0].id}, {len(meters)} meters)", fontsize=10, loc="left")
    ax.set_ylabel("MW")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(mdates.DayLocator(tz=tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=tz))  # type: ignore[no-untyped-call]
    fig.suptitle(
        f"One simulated week, {first_day.isoformat()} (local time), seed {seed}: "
        "hourly means from the simulator's meter readings",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--park", type=Path, default=ROOT / "config" / "park.yaml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 6, 1))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "simulated-week.png")
    args = parser.parse_args()
    plot(load_park(args.park), args.start, args.seed, args.out)
    sys.stderr.write(f"wrote {args.out} at {datetime.now(UTC):%H:%M:%S} UTC\n")


if __name__ == "__main__":
    main()
