"""Energy per sample and power, from the hardware's cumulative energy counters (NVML on CUDA, RAPL on CPUs).

Both counters measure the whole GPU or CPU package, idle power and other processes included, and
update every few milliseconds (RAPL) to ~100 ms (NVML): calls are repeated for a window of at
least a second so one update step is a small share of what is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_netzip.data.inputs import bound
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    import torch

    from pytest_netzip.data.workload import Workload
    from pytest_netzip.metrics.base import Subject

#: Where Linux exposes RAPL energy counters.
POWERCAP = Path("/sys/class/powercap")

#: Shortest window energy is read over, in seconds.
MIN_WINDOW = 1.0


class EnergyCounter(Protocol):
    """A cumulative energy counter of a device."""

    name: str

    def joules(self) -> float:
        """Energy used since some fixed point, in joules."""


class NvmlCounter:
    """NVML's total-energy counter of one GPU (Volta and newer), in millijoules since the driver loaded.

    The GPU is found by its UUID: NVML numbers every GPU of the machine, CUDA only those
    ``CUDA_VISIBLE_DEVICES`` shows.
    """

    def __init__(self, device: torch.device) -> None:
        import pynvml
        import torch

        pynvml.nvmlInit()
        index = device.index if device.index is not None else torch.cuda.current_device()
        uuid = f"GPU-{torch.cuda.get_device_properties(index).uuid}"
        self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
        self._read: Callable[[Any], int] = pynvml.nvmlDeviceGetTotalEnergyConsumption  # millijoules
        self.name = f"NVML total energy of cuda:{index} ({uuid})"
        self.joules()  # NotSupported on older GPUs: fail here, not in the window

    def joules(self) -> float:
        """The GPU's total energy counter, in joules."""
        return self._read(self._handle) / 1e3


class RaplCounter:
    """The sum of the RAPL package counters under ``root``, corrected for wrap-around.

    Only ``package-N`` zones count: ``psys``, on laptops, already includes the packages.
    """

    def __init__(self, root: Path | None = None) -> None:
        root = POWERCAP if root is None else root
        self._zones = sorted(
            path for path in root.glob("intel-rapl:*")
            if path.name.count(":") == 1 and _zone_name(path).startswith("package")
        )
        if not self._zones:
            raise MetricUnavailable(f"no RAPL package energy counter ({root}/intel-rapl:*/name package-N is absent)")
        self.name = "RAPL package energy of " + ", ".join(zone.name for zone in self._zones)
        self._last = [self._microjoules(zone) for zone in self._zones]
        self._total = 0.0

    @staticmethod
    def _microjoules(zone: Path) -> int:
        try:
            return int((zone / "energy_uj").read_text())
        except PermissionError:
            raise MetricUnavailable(
                f"cannot read {zone / 'energy_uj'} (permission denied; RAPL needs root or a udev rule)"
            ) from None

    def joules(self) -> float:
        """The CPU packages' energy counters summed, in joules, counting their wrap-arounds."""
        for index, zone in enumerate(self._zones):
            now = self._microjoules(zone)
            step = now - self._last[index]
            if step < 0:  # the counter wrapped around
                step += int((zone / "max_energy_range_uj").read_text())
            self._total += step
            self._last[index] = now
        return self._total / 1e6


def _zone_name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return ""


def counter_for(device: torch.device) -> EnergyCounter:
    """The energy counter covering ``device``; MetricUnavailable saying why there is none."""
    if device.type == "cuda":
        try:
            return NvmlCounter(device)
        except ImportError:
            raise MetricUnavailable("NVML is not installed (pip install nvidia-ml-py)") from None
        except Exception as exc:  # pynvml.NVMLError and its many subclasses
            raise MetricUnavailable(f"NVML cannot read the GPU's energy: {exc}") from None
    if device.type == "cpu":
        return RaplCounter()
    raise MetricUnavailable(f"no energy counter is known for {device.type}")


@dataclass(frozen=True)
class Energy:
    """What a counter read over a window of repeated calls."""

    joules: float
    seconds: float
    samples: int

    @property
    def millijoules_per_sample(self) -> float:
        """Millijoules per sample over the window."""
        return self.joules * 1e3 / self.samples

    @property
    def watts(self) -> float:
        """Mean power over the window, in watts."""
        return self.joules / self.seconds


def measure_energy(
    call: Callable[[], object], sync: Callable[[], None], counter: EnergyCounter, batch_size: int, window: float
) -> Energy:
    """Repeat ``call`` for at least ``window`` seconds and until ``counter`` moves; read what it used."""
    import torch

    with torch.inference_mode():
        call()
        sync()
        start_joules, start = counter.joules(), time.perf_counter()
        calls = 0
        while True:
            call()
            sync()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= window:
                used = counter.joules() - start_joules
                if used > 0:
                    return Energy(used, elapsed, calls * batch_size)
                if elapsed >= 10 * window:
                    raise MetricUnavailable(f"{counter.name} did not advance in {elapsed:.2g} s")


def _energy(subject: Subject, workload: Workload) -> Energy:
    if workload.disabled:
        raise MetricUnavailable(workload.disabled)
    return energy_of(subject, workload)


@metric("energy_mj_per_sample", "energy of one sample, read from the device's counter over >= 1 s of calls",
        unit="mJ", higher_is_better=False, group="energy")
def energy_mj_per_sample(subject: Subject, reference: Subject, workload: Workload) -> float:
    """Millijoules per sample."""
    return _energy(subject, workload).millijoules_per_sample


@metric("power_w", "mean power of the device while the model runs", unit="W", higher_is_better=False,
        group="energy", summary=False)
def power_w(subject: Subject, reference: Subject, workload: Workload) -> float:
    """Watts."""
    return _energy(subject, workload).watts


@metric("efficiency_ratio", "reference energy per sample / compressed energy per sample (NetZIP's E)",
        relative=True, group="energy")
def efficiency_ratio(subject: Subject, reference: Subject, workload: Workload) -> float:
    """How many times less energy per sample than the reference."""
    if subject is reference:
        return 1.0
    return _energy(reference, workload).millijoules_per_sample / _energy(subject, workload).millijoules_per_sample


ENERGY_METRICS = (energy_mj_per_sample, power_w, efficiency_ratio)


def energy_of(subject: Subject, workload: Workload) -> Energy:
    """Energy of ``subject`` read over a window of calls on a batch (tried once per workload)."""
    from functools import partial

    from pytest_netzip.devices import synchronize

    def measure() -> Energy:
        counter = counter_for(subject.device)
        call = bound(subject.model, subject.batch(workload))
        window = max(MIN_WINDOW, workload.max_time)
        return measure_energy(call, partial(synchronize, subject.device), counter, workload.batch_size, window)

    return subject.once(("energy", workload), lambda: subject.blamed("measuring the energy of", measure))
