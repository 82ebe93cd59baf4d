"""Where the project's files are, for tests that run its commands or read its config."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PARK = ROOT / "config" / "park.yaml"
