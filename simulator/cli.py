"""`emissions simulate`: a Nam Cau Kien-like park publishing over MQTT, with faults on demand."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.cli_support import err, load_settings, out, parse_time_option
from core.logs import get_logger
from core.park.loader import ParkConfigError, load_park
from core.park.models import Park
from core.runner import on_stop_signals
from simulator import state
from simulator.faults import Fault, FaultSpec, parse_duration, parse_spec
from simulator.gateway import Limits
from simulator.ledger import Ledger
from simulator.protocols import clients
from simulator.publisher import MqttSink, NullSink, SimulatorError, Sink, gateway_passwords
from simulator.runner import Mode, RunConfig, Runner, Summary

log = get_logger("simulator")

FAULT_HELP = (
    "Inject a fault, repeatable: KIND:rate=P (chance per reading, or per gateway batch) "
    "or KIND:at=TIME (once, at an RFC 3339 time), plus meter=ID, for=DURATION (silent, "
    "late; default 2h, 3h), skew=DURATION (clock_skew; default 366d). KIND: glitch, reset, "
    "rollover, silent, clock_skew, nan, duplicate, out_of_order, late, malformed, "
    "unknown_meter, wrong_site, oversized, conflict. Example: --fault glitch:rate=0.001 "
    "--fault silent:at=2026-01-05T08:00+07:00,meter=NCK-STL1-E-01,for=2h"
)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value == "now":
        return datetime.now(UTC)
    return parse_time_option(value, name)


def _faults(values: list[str]) -> list[FaultSpec]:
    try:
        return [parse_spec(v) for v in values]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None


def _window(
    mode: Mode, start: str | None, end: str | None, backfill: str
) -> tuple[datetime, datetime | None]:
    now = datetime.now(UTC).replace(microsecond=0)
    t0, t1 = _time(start, "--start"), _time(end, "--end")
    if mode is Mode.realtime:
        if t1 is not None:
            raise typer.BadParameter("real time runs until stopped", param_hint="--end")
        back = timedelta(seconds=parse_duration(backfill))
        return (t0 or now - back), None
    t0 = t0 or now - timedelta(days=30)
    t1 = t1 or now
    if t1 <= t0:
        raise typer.BadParameter("--end must be after --start", param_hint="--end")
    return t0, t1


def simulate(
    mode: Annotated[
        Mode,
        typer.Option(
            help="realtime: publish as the park lives (after any --backfill); accelerated: "
            "simulate --start..--end as fast as possible (history); load: like accelerated "
            "but throttled to --rate readings/s (benchmarks)."
        ),
    ] = Mode.realtime,
    park_file: Annotated[
        Path | None,
        typer.Option(
            "--park",
            help="Park file, the one the service applied (default: EMISSIONS_PARK_CONFIG).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Same seed, same readings (default: EMISSIONS_SIMULATOR_SEED)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="RFC 3339 start of simulated time (default: now - --backfill in real "
            "time, now - 30 days otherwise)."
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="RFC 3339 end, exclusive (accelerated/load; default now).")
    ] = None,
    backfill: Annotated[
        str,
        typer.Option(
            help="Real time: first catch up on this much history at full speed, e.g. 30d."
        ),
    ] = "0s",
    interval_s: Annotated[
        int | None,
        typer.Option(
            help="Seconds between counter readings (delta meters use their interval_s; "
            "pulse meters with max_gap_s >= 2 h read hourly). "
            "Default: EMISSIONS_SIMULATOR_INTERVAL_S."
        ),
    ] = None,
    jitter_s: Annotated[
        int | None, typer.Option(help="Up to this many seconds early or late per reading.")
    ] = None,
    batch_s: Annotated[
        int | None,
        typer.Option(
            help="Each gateway publishes one batch per this many seconds (default: "
            "EMISSIONS_SIMULATOR_BATCH_S in real time, EMISSIONS_SIMULATOR_CATCHUP_BATCH_S "
            "for history: accelerated, load and the backfill)."
        ),
    ] = None,
    fault: Annotated[list[str] | None, typer.Option(help=FAULT_HELP)] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(help="Write a JSON-lines ledger of every message and fault here."),
    ] = None,
    rate: Annotated[float, typer.Option(help="Load mode: target readings per second.")] = 5000.0,
    duration: Annotated[
        str | None, typer.Option(help="Load mode: stop after this much wall time, e.g. 60s.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Publish nothing; only generate (and write the ledger).")
    ] = False,
    buffer: Annotated[
        Path | None,
        typer.Option(
            help="The gateways' store-and-forward buffer (SQLite): batches stay here until "
            "the service confirms them, and are republished after a reconnect or on the next "
            "run (default: simulator/gateway-buffer.sqlite in the state directory)."
        ),
    ] = None,
    wait_committed: Annotated[
        float,
        typer.Option(
            help="At the end, wait until the service confirmed every batch, giving up when "
            "nothing moved for this many seconds (0: stop once the broker has them all)."
        ),
    ] = 0.0,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Keep the meters' registers here between runs: a new run continues from "
            "where the last one stopped (same seed), so a restart never rewrites history.",
        ),
    ] = None,
) -> None:
    """Simulate the park's meters and gateways and publish their readings over MQTT.

    Every enterprise's gateway logs in with its own broker user and publishes batches
    on {prefix}/{site}/gateways/{gateway}. Deterministic for a given seed and start.
    """
    settings = load_settings()
    specs = _faults(fault or [])
    t0, t1 = _window(mode, start, end, backfill)
    try:
        park = load_park(park_file or settings.park_config)
    except ParkConfigError as exc:
        err.print(f"[red]{park_file or settings.park_config}: invalid park file[/red]\n{exc}")
        raise typer.Exit(1) from None
    if len(park.sites) < 2 and any(f.kind is Fault.wrong_site for f in specs):
        log.warning("wrong_site_needs_two_sites", sites=len(park.sites))
    seed_value = settings.simulator_seed if seed is None else seed
    saved = state.load(state_file, seed_value) if state_file is not None else None
    resume = state.resume_start(saved, int(t0.timestamp()))
    if resume is not None:
        t0 = datetime.fromtimestamp(resume, UTC)
        log.info("simulator_resuming", start=t0.isoformat(), state=str(state_file))
    if t1 is not None and t0 >= t1:
        out.print(f"nothing to simulate: {state_file} is already at {t0.isoformat()}")
        return
    config = RunConfig(
        mode=mode,
        start=t0,
        end=t1,
        seed=seed_value,
        interval_s=interval_s or settings.simulator_interval_s,
        jitter_s=settings.simulator_jitter_s if jitter_s is None else jitter_s,
        batch_s=batch_s or settings.simulator_batch_s,
        catchup_batch_s=batch_s or settings.simulator_catchup_batch_s,
        faults=specs,
        prefix=settings.mqtt_topic_prefix,
        limits=Limits(settings.ingest_max_payload_bytes, settings.ingest_max_future_skew_s),
        rate=rate if mode is Mode.load else 0.0,
        duration_s=parse_duration(duration) if duration and mode is Mode.load else None,
    )
    gateways = clients(park)  # canonical gateways and device protocols' clients
    sink: Sink = NullSink()
    try:
        if not dry_run:
            passwords = gateway_passwords(settings.state_dir, gateways)
            mqtt_sink = MqttSink(
                settings.mqtt_host,
                settings.mqtt_port,
                passwords,
                buffer_path=buffer or settings.state_dir / "simulator" / "gateway-buffer.sqlite",
                window=settings.simulator_window,
            )
            sink = mqtt_sink
            mqtt_sink.connect()
        summary = _run(park, config, sink, Ledger(ledger), state_file, saved if resume else None)
        if wait_committed > 0 and isinstance(sink, MqttSink):
            sink.wait_committed(wait_committed)
    except SimulatorError as exc:
        err.print(f"[red]simulator:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        sink.close()
    out.print(
        f"{summary.readings} readings in {summary.messages} messages, "
        f"{summary.simulated_s / 86400:.2f} simulated days in {summary.elapsed_s:.1f} s "
        f"({summary.readings_per_s:,.0f} readings/s); faults: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.faults.items())) or "none")
    )


def _run(
    park: Park,
    config: RunConfig,
    sink: Sink,
    ledger: Ledger,
    state_file: Path | None,
    saved: state.Saved | None,
) -> Summary:
    stop = threading.Event()
    on_stop_signals(stop)
    runner = Runner(park, config, sink, ledger, stop=stop, state_path=state_file)
    if saved is not None:
        state.restore(runner.sim, saved)
    log.info(
        "simulation_start",
        mode=config.mode.value,
        start=config.start.isoformat(),
        seed=config.seed,
        faults=len(config.faults),
    )
    try:
        if config.mode is Mode.realtime:
            return _realtime(runner)
        total = int(((config.end or datetime.now(UTC)) - config.start).total_seconds())
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} readings/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task(f"simulating ({config.mode.value})", total=total, rate="0")

            def show(done: int, s: Summary) -> None:
                progress.update(task, completed=done, rate=f"{s.readings_per_s:,.0f}")

            return runner.run(show)
    finally:
        ledger.close()


def _realtime(runner: Runner) -> Summary:
    """A log line at most every 30 s: the backfill catches up fast, real time is slow."""
    last = [0.0]

    def show(done: int, s: Summary) -> None:
        if time.monotonic() - last[0] >= 30:
            last[0] = time.monotonic()
            log.info(
                "simulated",
                hours=round(done / 3600, 1),
                readings=s.readings,
                readings_per_s=round(s.readings_per_s),
            )

    return runner.run(show)
