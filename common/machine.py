"""The machine a budget is spent on, and TensorFlow's oneDNN CPU kernels on it.

TensorFlow 2.21's x86 wheels carry two sets of CPU kernels: its own (Eigen) and
oneDNN's. Whether oneDNN is used is decided when TensorFlow starts, from
`TF_ENABLE_ONEDNN_OPTS` or, when that is unset, from the CPU: on the Intel Xeon
machines (AVX-512) where this package was first developed and timed it was on by
default; on an AMD EPYC with AVX2 only (2026-12-01) it was off, which also
leaves TensorFlow without a CPU gradient for grouped convolutions (MAML's batched
inner loop then falls back to its slower "patches" convolution). Measured on that
AMD machine, alone, oneDNN off vs on (`results/machine/onednn.md`): MAML Omniglot
conv second-order meta-iterations 1.1-2.2x faster with oneDNN, the ODE-Net block's
forward+backward 1.15x faster, the XLA-compiled sinusoid unchanged; a magnet
fit step 2.5x faster (`results/machine/onednn_magnet.md`).

So the mains call `request_onednn()` before TensorFlow starts: it turns oneDNN on
on x86-64 unless the user chose (`TF_ENABLE_ONEDNN_OPTS=0` keeps TensorFlow's own
kernels, e.g. for the portable repeatability mode of docs/development.md). Every
budget names the machine with `description()`: CPU model, cores and whether
oneDNN ran, because minutes of training on two different CPUs are not the same
compute.

This module imports TensorFlow only inside `onednn_enabled()`, so a main can call
`request_onednn()` before importing anything that imports TensorFlow.

Example:
    >>> from common import machine
    >>> machine.request_onednn()
    >>> isinstance(machine.cpu_model(), str)
    True
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
_X86_64 = ("x86_64", "amd64")


def request_onednn() -> None:
    """Asks TensorFlow for its oneDNN CPU kernels on x86-64.

    Sets `TF_ENABLE_ONEDNN_OPTS=1` unless the variable is already set (a user's
    explicit choice wins) or the CPU is not x86-64 (oneDNN's TensorFlow kernels
    are built for x86 only). TensorFlow reads it when it initialises its
    kernels, so call this before any TensorFlow work.
    """
    if platform.machine().lower() in _X86_64:
        os.environ.setdefault(ONEDNN_ENV, "1")


def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow runs oneDNN kernels (None if unknown)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name ("" where the system does not say)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or ""


def description() -> str:
    """One line naming this machine and its TensorFlow CPU kernels."""
    model = cpu_model()
    onednn = onednn_enabled()
    kernels = {True: "oneDNN on", False: "oneDNN off", None: "oneDNN unknown"}
    return (
        f"{platform.machine()}"
        + (f" {model}" if model else "")
        + f", {os.cpu_count()} CPU cores, {platform.system()}, "
        f"Python {platform.python_version()}, {kernels[onednn]}, no GPU"
    )


# Descriptions written before 2026-12-02 named the kernel release too ("Linux
# 6.1.0-18-amd64"); it does not change the compute, so records that differ only
# there are one machine.
_OS_RELEASE = re.compile(r", (Linux|Darwin|Windows) [^,]+,")


def _same_compute(machines: Mapping[str, Mapping[str, float]]) -> dict[str, dict]:
    """`machines` with entries that differ only in the OS release merged."""
    merged: dict[str, dict] = {}
    for name, m in machines.items():
        key = _OS_RELEASE.sub(r", \1,", name)
        into = merged.setdefault(key, {"train_seconds": 0.0, "steps": 0})
        into["train_seconds"] += float(m["train_seconds"])
        into["steps"] += int(m["steps"])
    return merged


def spread(
    machines: Mapping[str, Mapping[str, float]],
    total_seconds: float,
    total_steps: int,
    unit: str = "step",
) -> str:
    """Which machines a resumable run's training time was spent on.

    Args:
        machines: `{description: {"train_seconds": s, "steps": n}}` as the
            training loop records it, one entry per machine that trained.
        total_seconds: The run's training seconds over all sittings.
        total_steps: The run's steps over all sittings.
        unit: What a step is called in the text ("iteration" for MAML).

    Returns:
        The description alone when one machine did all the work, otherwise one
        clause per machine ("<machine>: 1,200 steps in 30.0 min"), with the
        time of sittings that predate the record (runs begun before it
        existed) as "machine not recorded". Records that differ only in the
        OS release (older descriptions named it) count as one machine.
    """
    machines = _same_compute(machines)
    if len(machines) == 1 and total_steps == sum(
        int(m["steps"]) for m in machines.values()
    ):
        return next(iter(machines))
    parts = [
        f"{name}: {int(m['steps']):,} {unit}s in {m['train_seconds'] / 60:.1f} min"
        for name, m in machines.items()
    ]
    rest_steps = total_steps - sum(int(m["steps"]) for m in machines.values())
    rest_seconds = total_seconds - sum(m["train_seconds"] for m in machines.values())
    if rest_steps > 0:
        minutes = rest_seconds / 60
        parts.insert(
            0, f"machine not recorded: {rest_steps:,} {unit}s in {minutes:.1f} min"
        )
    return "; ".join(parts) if parts else description()


def short_name(machine_text: str) -> str:
    """The CPU model(s) named in a budget's `machine` text, for a table cell.

    `description()` texts give their model ("AMD EPYC"); `spread()` texts give
    each machine's model in order, "earlier machine" standing for sittings that
    predate the record. Texts written before models were recorded give "".
    """

    def model(desc: str) -> str:
        first = desc.split(", ")[0].split(" ", 1)
        named = "CPU cores" in desc and len(first) == 2
        return first[1] if named else ""

    names = []
    for clause in machine_text.split("; "):
        desc = clause.rsplit(": ", 1)[0] if "; " in machine_text else clause
        name = "earlier machine" if desc == "machine not recorded" else model(desc)
        if name and name not in names:
            names.append(name)
    return " + ".join(names) if any(n != "earlier machine" for n in names) else ""
