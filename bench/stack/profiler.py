"""Optional py-spy recordings of a process during a run."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Profiler:
    """py-spy recordings (it costs CPU: the figures of a profiled run are not
    comparable); no binary, no recording."""

    binary: str | None
    fmt: str
    out_dir: Path
    stamp: str
    gil: bool = False
    prefix: str = "ingest"
    files: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def record(self, pid: int, phase: str, settle: float = 0.5) -> Iterator[None]:
        if not self.binary:
            yield
            return
        ext = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[self.fmt]
        out = self.out_dir / f"{self.prefix}-{self.stamp}-{phase}.{ext}"
        cmd = [self.binary, "record", "-p", str(pid), "-r", "200", "-f", self.fmt, "-o", str(out)]
        if self.gil:
            cmd.append("--gil")  # only the thread holding the GIL: where the CPU goes
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(settle)  # let py-spy attach before the run starts
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            self.files.append(str(out))
