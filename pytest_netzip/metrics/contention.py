"""CPU contention while timing: the share of the time netzip's threads were ready to run but waited for a CPU.

On a shared runner other processes take the CPUs; a thread that is ready but not running makes the
call it belongs to longer, and torch's intra-op threads wait for each other, so one thread left
waiting stalls a whole call (a 0.07 ms call took 50-80 ms on a loaded 2-core runner). The signal is
read over the timed rounds themselves, from the run-queue wait of this process's threads in
``/proc/self/task/*/schedstat`` (Linux: nanoseconds on a CPU, nanoseconds waiting for one). Unlike
PSI's ``/proc/pressure/cpu``, it counts only our own threads, not a stall elsewhere on the machine,
and no 10-second average lags behind it. Where it cannot be read (macOS, Windows), the fallback is
1 - process CPU time / wall time: it sees only contention that left the process less than one CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: The threads of this process, as Linux lists them.
TASKS = Path("/proc/self/task")

#: Above this share of waiting, timing is not judged. A thread that waits a share w of its time runs
#: 1 / (1 - w) times longer: at 0.1 that is 11%, as large as the tightest budgets (max_slowdown=1.1),
#: and threads that wait for each other make it worse. A quiet 2-core machine stays under 0.05.
MAX_PRESSURE = 0.1

#: The fallback's source: a GPU's synchronisation that sleeps would read as waiting, so it judges CPU timing only.
CPU_TIME = "process CPU time against wall time"


@dataclass(frozen=True)
class Pressure:
    """The share of their ready time our ``threads`` (torch's intra-op count) spent waiting, and how it was read."""

    share: float
    source: str
    threads: int

    def distorts(self, device_type: str) -> bool:
        """Whether the wait is large enough to distort timing on a device of ``device_type``."""
        return self.share > MAX_PRESSURE and (self.source != CPU_TIME or device_type == "cpu")

    @property
    def reason(self) -> str:
        """Why timing under this pressure is not judged, and what would help."""
        advice = ", or with --netzip-threads 1" if self.threads > 1 else ""
        return (f"the CPU was contended while timing: netzip's threads waited for a CPU {self.share:.0%} of the time "
                f"they were ready to run (over {MAX_PRESSURE:.0%}, read from {self.source}); "
                f"rerun on a quiet machine{advice}")


def _scheduled(tasks: Path) -> dict[str, tuple[int, int]]:
    """Nanoseconds on a CPU and waiting for one, per thread under ``tasks`` (empty where unreadable)."""
    times = {}
    for path in tasks.glob("*/schedstat"):
        try:
            running, waiting = path.read_text().split()[:2]
            times[path.parent.name] = (int(running), int(waiting))
        except (OSError, ValueError):  # a thread that ended since the listing, or a format we do not know
            continue
    return times


def watch(threads: int, tasks: Path | None = None) -> Callable[[], Pressure]:
    """Start watching this process's CPU waits; the function returned gives the pressure since.

    A thread started after the call counts from zero; one that ended is left out.
    """
    tasks = TASKS if tasks is None else tasks
    before, cpu, wall = _scheduled(tasks), time.process_time(), time.perf_counter()

    def pressure() -> Pressure:
        after = _scheduled(tasks)
        running = waiting = 0
        for thread, (run, wait) in after.items():
            run_before, wait_before = before.get(thread, (0, 0))
            running, waiting = running + run - run_before, waiting + wait - wait_before
        if before and running + waiting > 0:  # all zeros: a kernel that keeps no schedstats
            return Pressure(waiting / (running + waiting), f"the run-queue wait in {tasks}/*/schedstat", threads)
        busy = (time.process_time() - cpu) / max(time.perf_counter() - wall, 1e-9)
        return Pressure(min(max(1.0 - busy, 0.0), 1.0), CPU_TIME, threads)

    return pressure
