"""How much memory is left, and failing early with advice when a job cannot fit."""

from __future__ import annotations

from samscope.errors import InputError

__all__ = ["check_memory", "memory_available"]


def memory_available() -> int | None:
    """Bytes of memory this process may still use: MemAvailable, capped by a cgroup limit."""
    import os

    limit = os.environ.get("SAMSCOPE_MEMORY_LIMIT")
    if limit:
        units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
        text = limit.strip().lower().rstrip("b").rstrip("i")
        try:
            if text and text[-1] in units:
                return int(float(text[:-1]) * units[text[-1]])
            return int(float(text))
        except ValueError:
            raise InputError(
                f"SAMSCOPE_MEMORY_LIMIT={limit!r} is not a size (e.g. 8G, 512M, 1000000)"
            ) from None
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            cap = f.read().strip()
        if cap != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                used = int(f.read().strip())
            room = int(cap) - used
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def check_memory(needed: int, what: str, advice: str) -> None:
    """Fail early, with ``advice``, when ``needed`` bytes cannot fit in the memory left.

    The limit is the system's available memory (capped by a cgroup limit), or
    ``$SAMSCOPE_MEMORY_LIMIT`` (e.g. ``8G``) when set.

    Raises
    ------
    InputError
        Naming the need and what is available.
    """
    available = memory_available()
    if available is not None and needed > available:
        raise InputError(
            f"{what} needs about {needed / 2**30:.1f} GiB of memory but only "
            f"{available / 2**30:.1f} GiB are available; {advice}"
        )
