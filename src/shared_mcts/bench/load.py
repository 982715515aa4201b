"""How quiet the machine was while a bench cell ran: CPU time other processes used on our cores.

Others' CPU time = busy time of the CPUs we may run on (/proc/stat, per CPU) minus the CPU time
of this process and its descendants (/proc/PID/stat). Summing every process's utime+stime at
the start and the end instead would miss every process that starts and ends within the cell
(compilers, test runs: exactly the short jobs that disturb a measurement), since an exited
process's time leaves /proc. Our own tree is exact: a child's time moves into its parent's
cutime/cstime when the parent reaps it, so counting each live descendant's own and reaped
children's time, plus ours, never loses or double-counts a tick.

What no process count sees -- a host that runs this VM slower for a while -- shows in the speed
of the peak FMA kernel timed beside each cell's re-measure, judged against the bench's own peak.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOAD_FLAG_SHARE = 0.05  # others used more than 5% of our cores' time: flagged
LOAD_FLAG_LOADAVG = 0.5  # 1-minute load average above this before the cell: flagged
# The 1-minute load average decays with a 60 s time constant, so right after one of our own cells
# it still counts that cell (2 busy cores leave ~0.1 after 3 minutes): it says nothing about
# others then, and only others' CPU time is judged.
OWN_LOAD_MEMORY_S = 180.0
# The peak FMA kernel, timed beside the final re-measure, slower than this share of the peak the
# bench measured at its start: the machine itself was slow (a shared VM's host), though no process
# we can see was busy. Peaks of separate runs on one VM differed by up to 15%.
MACHINE_FLAG_SHARE = 0.8

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoadRecord:
    loadavg_before: float
    loadavg_after: float
    other_cpu_s: float
    wall_s: float
    cores: int
    other_share: float
    flagged: bool
    why: str
    machine_share: float | None = None  # slowest FMA probe beside the re-measure / the bench's peak

    def as_dict(self) -> dict:
        return asdict(self)


def loadavg_1min() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def busy_cpu_s(cpus: set[int], stat_text: str | None = None) -> float:
    """Non-idle time of the given CPUs since boot. Steal counts as busy: it is time another
    guest of the hypervisor took from our CPUs, the same disturbance as another process."""
    text = Path("/proc/stat").read_text() if stat_text is None else stat_text
    ticks = 0
    for line in text.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            ticks += user + nice + system + irq + softirq + steal  # guest time is already in user
    return ticks * _TICK_S


def _proc_stat(pid: int | str) -> tuple[int, int] | None:
    """(parent pid, utime+stime+cutime+cstime in ticks); None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def own_tree_cpu_s(root: int | None = None) -> float:
    """CPU time of process `root` (default: this one) and all its live descendants, including the
    children each of them has reaped."""
    root = os.getpid() if root is None else root
    parent_and_ticks = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(entry.name)
            if stat is not None:
                parent_and_ticks[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in parent_and_ticks.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in parent_and_ticks:
            ticks += parent_and_ticks[pid][1]
            todo.extend(children.get(pid, []))
    return ticks * _TICK_S


def judge(loadavg_before: float, other_cpu_s: float, wall_s: float, cores: int, judge_loadavg: bool,
          machine_share: float | None = None) -> tuple[float, bool, str]:
    """(other_share, flagged, why) per the thresholds above."""
    share = other_cpu_s / (wall_s * cores) if wall_s > 0 else 0.0
    reasons = []
    if share > LOAD_FLAG_SHARE:
        reasons.append(f"other processes used {100 * share:.1f}% of the {cores} cores ({other_cpu_s:.1f} s CPU "
                       f"in {wall_s:.1f} s; limit {100 * LOAD_FLAG_SHARE:.0f}%)")
    if judge_loadavg and loadavg_before > LOAD_FLAG_LOADAVG:
        reasons.append(f"1-minute load average {loadavg_before:.2f} before the cell (limit {LOAD_FLAG_LOADAVG})")
    if machine_share is not None and machine_share < MACHINE_FLAG_SHARE:
        reasons.append(f"the peak FMA kernel ran at {100 * machine_share:.0f}% of the bench's peak beside the "
                       f"re-measure (limit {100 * MACHINE_FLAG_SHARE:.0f}%)")
    if reasons:
        return share, True, "; ".join(reasons)
    why = f"quiet: other processes used {100 * share:.1f}% of the {cores} cores"
    if not judge_loadavg:
        why += " (load average not judged: it still counts this bench's previous cell)"
    return share, False, why


class LoadMeter:
    """start() before a cell, stop() after it, in the bench process. Made before the bench's own
    start-up (importing TVM, measuring the peak): that work raises the load average too, so the
    first cell is judged by the load average the bench found when it began."""

    def __init__(self) -> None:
        self.cpus = os.sched_getaffinity(0)
        self._loadavg_at_creation: float | None = loadavg_1min()
        self._last_stop: float | None = None
        self._start: tuple[float, float, float, float] | None = None

    def start(self) -> None:
        loadavg = loadavg_1min() if self._loadavg_at_creation is None else self._loadavg_at_creation
        self._loadavg_at_creation = None
        self._start = (time.monotonic(), loadavg, busy_cpu_s(self.cpus), own_tree_cpu_s())

    def stop(self, machine_share: float | None = None) -> LoadRecord:
        """machine_share: the machine's speed beside the cell's re-measure over the bench's peak."""
        assert self._start is not None, "stop() without start()"
        t0, loadavg_before, busy0, own0 = self._start
        busy1, own1 = busy_cpu_s(self.cpus), own_tree_cpu_s()
        now = time.monotonic()
        wall = now - t0
        # Tick sampling can make our share exceed the CPUs' by a tick or two: never below zero.
        other = max(0.0, (busy1 - busy0) - (own1 - own0))
        judge_loadavg = self._last_stop is None or t0 - self._last_stop > OWN_LOAD_MEMORY_S
        share, flagged, why = judge(loadavg_before, other, wall, len(self.cpus), judge_loadavg, machine_share)
        self._last_stop, self._start = now, None
        return LoadRecord(loadavg_before, loadavg_1min(), other, wall, len(self.cpus), share, flagged, why, machine_share)
