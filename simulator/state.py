"""The devices' memory between runs (`--state PATH`): registers survive a restart.

Real meters keep counting while their gateway is down. Without this file a new run
starts every register from the seed again, so re-running over a period already
stored gives other values there (conflicts, and a reset where the runs meet).
With it a run continues from the last tick the previous run published: its
registers, and the time it got to (so a restarted demo backfills only the gap).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.logs import get_logger
from simulator.generate import Simulation

log = get_logger("simulator")

VERSION = 1
MAX_GAP_S = 90 * 86400  # older state is ignored: the registers start afresh


@dataclass(frozen=True)
class Saved:
    seed: int
    t: int  # Unix seconds: everything before it was published
    meters: dict[str, dict[str, Any]]


def load(path: Path, seed: int) -> Saved | None:
    """The saved state for `seed`, or None (missing, unreadable, other seed)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("simulator_state_unreadable", path=str(path), error=str(exc))
        return None
    if doc.get("version") != VERSION or doc.get("seed") != seed:
        log.warning("simulator_state_ignored", path=str(path), reason="other seed or version")
        return None
    return Saved(int(doc["seed"]), int(doc["t"]), dict(doc["meters"]))


def save(path: Path, sim: Simulation, t: int) -> None:
    """Atomically: a crash mid-write leaves the previous state."""
    meters = {
        d.meter.id: {
            "register": d.register,
            "last_value": d.last_value,
            "last_sent_ts": d.last_sent_ts,
            "wraps": d.wraps,
            "last_read": d.last_read,
            "slot": d.slot,
        }
        for d in sim.devices
    }
    doc = {"version": VERSION, "seed": sim.seed, "t": t, "meters": meters}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def restore(sim: Simulation, saved: Saved) -> int:
    """Carry the saved registers into `sim` (which starts at or after `saved.t`); the
    meters count what was used in between. Returns how many meters were restored."""
    restored = 0
    for device in sim.devices:
        entry = saved.meters.get(device.meter.id)
        if entry is None:
            continue  # a meter new in the park file starts from the seed
        device.register = float(entry["register"])
        device.last_value = entry["last_value"]
        device.last_sent_ts = entry["last_sent_ts"]
        device.wraps = int(entry["wraps"])
        # the register holds what was used up to the last reading; count on from there
        last_read = min(int(entry["last_read"]), sim.start)
        if sim.start > saved.t:
            device.fast_forward(last_read, sim.start)
        else:  # no gap: the next reading is the one the last run had not taken yet
            device.last_read = last_read
            slot = int(entry["slot"])
            # A run with another interval (the demo: hourly history, then a reading
            # a minute) numbers its slots in other units; counting on from that
            # slot would walk millions of them. Its own slot, from the start, is right.
            if abs(slot * device.period - saved.t) <= 2 * device.period:
                device.slot = slot
        restored += 1
    return restored


def resume_start(saved: Saved | None, requested: int) -> int | None:
    """Where a run with this state starts: where the last one stopped, if that is
    after the requested start and not too long ago; None to ignore the state."""
    if saved is None or requested - saved.t > MAX_GAP_S:
        return None
    return max(requested, saved.t)
