"""bench.ingest's two tables: the figures, and the ratios against the goals."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich.table import Table

from bench.ingest.plan import GOALS
from bench.report import fmt, ok


def ratios(figures: dict[str, Any]) -> dict[str, Any]:
    def get(run: str, key: str) -> float | None:
        value = figures.get(run, {}).get(key)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    single = get("ingest_single", "messages_per_s")
    single_r = get("ingest_single", "readings_per_s")
    batch = get("ingest_batch", "readings_per_s")
    naive = get("naive", "readings_per_s")
    return {
        "ingest_single_vs_bare_subscriber": div(single, get("bare_subscriber", "messages_per_s")),
        "ingest_drain_vs_bare_drain": div(
            get("ingest_drain", "messages_per_s"), get("bare_drain", "messages_per_s")
        ),
        "ingest_batch_readings_per_s": batch,
        "latency_batch_p99_ms": get("latency_batch", "p99_ms"),
        "latency_single_p99_ms": get("latency_single", "p99_ms"),
        "speedup_single_vs_naive": div(single_r, naive),
        "speedup_batch_vs_naive": div(batch, naive),
        "ingest_batch_vs_copy": div(batch, get("copy", "rows_per_s")),
        "writer_vs_copy": div(get("writer", "readings_per_s"), get("copy", "rows_per_s")),
    }


def report_table(figures: dict[str, Any]) -> Table:
    table = Table(title="Ingest benchmark", show_lines=False)
    table.add_column("#")
    table.add_column("Measure")
    table.add_column("Figure", justify="right")
    table.add_column("Detail")

    def row(
        num: str, name: str, key: str, render: Callable[[dict[str, Any]], tuple[str, str]]
    ) -> None:
        f = figures.get(key)
        if f is None:
            return
        if "error" in f:
            table.add_row(num, name, "[red]failed[/red]", f["error"][:120])
            return
        table.add_row(num, name, *render(f))

    row(
        "A",
        "Ceiling A: bare paho subscriber",
        "bare_subscriber",
        lambda f: (
            fmt(f["messages_per_s"], " msg/s"),
            f"{f['messages']:,} msgs; publisher sent {fmt(f['publish_messages_per_s'])} msg/s",
        ),
    )
    row(
        "A",
        "Ceiling A on a backlog (no publisher)",
        "bare_drain",
        lambda f: (fmt(f["messages_per_s"], " msg/s"), f"{f['messages']:,} queued msgs"),
    )
    row(
        "B",
        "Ceiling B: binary COPY into readings",
        "copy",
        lambda f: (
            fmt(f["rows_per_s"], " rows/s"),
            f"{f['rows']:,} rows, commit per {f['rows_per_commit']:,}; {ok(f['verified'])}",
        ),
    )
    for key, label in (
        ("ingest_single", "single-reading msgs"),
        ("ingest_batch", "50-reading batches"),
    ):
        row(
            "3",
            f"Ingestor, {label}",
            key,
            lambda f: (
                fmt(f.get("readings_per_s"), " readings/s"),
                f"{f['messages']:,} msgs ({fmt(f.get('messages_per_s'))} msg/s), "
                f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}; "
                f"mean batch {fmt(f['ingestor'].get('mean_batch_readings'))} readings, "
                f"commit {fmt(f['ingestor'].get('mean_commit_ms'), ' ms', 1)}",
            ),
        )
    row(
        "3",
        "Ingestor on a backlog, single-reading msgs",
        "ingest_drain",
        lambda f: (
            fmt(f.get("messages_per_s"), " msg/s"),
            f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}; first commit "
            f"{fmt(f.get('start_to_first_commit_s'), ' s', 1)} after start; mean batch "
            f"{fmt(f['ingestor'].get('mean_batch_readings'))}, "
            f"commit {fmt(f['ingestor'].get('mean_commit_ms'), ' ms', 1)}",
        ),
    )
    row("3", "Ingestor", "ingestor", lambda f: ("", ""))
    for key, label in (
        ("latency_batch", "50-reading batches"),
        ("latency_single", "single readings"),
    ):
        row(
            "4",
            f"Latency at 5,000 readings/s, {label}",
            key,
            lambda f: (
                f"p50 {fmt(f['p50_ms'], ' ms')} / p99 {fmt(f['p99_ms'], ' ms')}",
                f"max {fmt(f['max_ms'], ' ms')}; txn-start bound p50/p99 "
                f"{fmt(f['txn_start_p50_ms'])}/{fmt(f['txn_start_p99_ms'], ' ms')}; "
                f"{f['stored']:,}/{f['readings']:,} {ok(f['verified'])}"
                + ("" if f["commits_in_publish_order"] else " [red]out of order[/red]"),
            ),
        )
    row(
        "5",
        "Naive: INSERT per reading, autocommit",
        "naive",
        lambda f: (
            fmt(f["readings_per_s"], " readings/s"),
            f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}",
        ),
    )
    row(
        "d",
        "Diagnostic: parser alone",
        "parse",
        lambda f: (
            fmt(f["single"]["messages_per_s"], " msg/s"),
            f"batches: {fmt(f['batch']['readings_per_s'])} readings/s",
        ),
    )
    for protocol, f in sorted(figures.get("adapters", {}).items()):
        if isinstance(f, dict) and "messages_per_s" in f:
            table.add_row(
                "d",
                f"Diagnostic: {protocol} adapter",
                fmt(f["messages_per_s"], " msg/s"),
                f"{f['messages']:,} msgs, in process; {f['rejected']} rejected",
            )
    row(
        "d",
        "Diagnostic: BatchWriter alone",
        "writer",
        lambda f: (
            fmt(f["readings_per_s"], " readings/s"),
            f"{f['readings']:,} readings, {f['readings_per_transaction']:,} per txn; "
            f"{ok(f['verified'])}",
        ),
    )
    row(
        "d",
        "Diagnostic: Pipeline without MQTT",
        "pipeline",
        lambda f: (
            fmt(f["messages_per_s"], " msg/s"),
            f"{f['messages']:,} single-reading msgs; {ok(f['verified'])}",
        ),
    )
    return table


def goals_table(r: dict[str, Any]) -> Table:
    table = Table(title="Ratios and goals")
    table.add_column("Measure")
    table.add_column("Goal", justify="right")
    table.add_column("Measured", justify="right")
    table.add_column("")

    def verdict(value: float | None, good: Callable[[float], bool]) -> str:
        if value is None:
            return "[yellow]n/a[/yellow]"
        return "[green]PASS[/green]" if good(value) else "[red]FAIL[/red]"

    for key, label in (
        ("ingest_single_vs_bare_subscriber", "live, publisher running"),
        ("ingest_drain_vs_bare_drain", "draining a backlog"),
    ):
        value = r[key]
        table.add_row(
            f"Ingestor single-reading rate / bare subscriber ({label})",
            ">= 50 %",
            fmt(None if value is None else 100 * value, " %", 1),
            verdict(value, lambda v: v >= GOALS["single_vs_bare"]),
        )
    batch = r["ingest_batch_readings_per_s"]
    table.add_row(
        "Ingestor, 50-reading batches",
        ">= 100,000 readings/s",
        fmt(batch, " readings/s"),
        verdict(batch, lambda v: v >= GOALS["batch_readings_per_s"]),
    )
    for key, label in (("latency_batch_p99_ms", "batches"), ("latency_single_p99_ms", "single")):
        table.add_row(
            f"p99 publish-to-commit at 5,000 readings/s ({label})",
            "<= 500 ms",
            fmt(r[key], " ms"),
            verdict(r[key], lambda v: v <= GOALS["p99_ms"]),
        )
    for key, label in (
        ("speedup_single_vs_naive", "Speed-up vs naive (single-reading msgs)"),
        ("speedup_batch_vs_naive", "Speed-up vs naive (50-reading batches)"),
        ("ingest_batch_vs_copy", "Ingestor batches / COPY ceiling"),
        ("writer_vs_copy", "BatchWriter alone / COPY ceiling"),
    ):
        unit = " x" if key.startswith("speedup") else ""
        table.add_row(label, "", fmt(r[key], unit, 2 if not unit else 1), "")
    return table
