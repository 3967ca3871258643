"""Mitochondria morphology: dot (fragmented) or rod (tubular), by area.

The rule is the one of the morphology case study in Jadhav, Prasad & Agarwal, "SAM for robust
mitochondria instance segmentation in fluorescence microscopy" (2026, §4.5, eq. 5): a
mitochondrion is a **dot** if its area is at most 200 pixels and a **rod** otherwise, at the
80 nm pixels the model works at. samscope states the threshold in physical units,
200 × (0.08 µm)² = **1.28 µm²**, so the same rule holds at any pixel size; it is an option.
For images without a pixel size the threshold is applied as 200 px (the 80 nm scale assumed),
and every area is reported in px².

Per image (:func:`dot_rod_summary`): the number of each type, the area each type covers and
its proportion of the total area of all objects (each object counted whole, so pixels shared
by overlapping mitochondria count for each, as in the case study's normalisation "by the total
counts and total area of all instances in the image").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from samscope.analysis.table import Table
from samscope.errors import InputError

__all__ = ["DOT_MAX_AREA_UM2", "REFERENCE_PIXEL_NM", "DotRodSummary", "dot_rod_summary",
           "is_dot"]

#: The case study's working pixel size, nm.
REFERENCE_PIXEL_NM = 80.0
#: Largest area of a dot: 200 px at 80 nm, in µm².
DOT_MAX_AREA_UM2 = 200 * (REFERENCE_PIXEL_NM / 1e3) ** 2


def _check_threshold(dot_max_area_um2: float) -> float:
    value = float(dot_max_area_um2)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"the dot/rod threshold must be a positive area in µm², got "
                         f"{dot_max_area_um2!r}")
    return value


def is_dot(table: Table, *, dot_max_area_um2: float = DOT_MAX_AREA_UM2) -> np.ndarray:
    """Whether each object is a dot (area ≤ threshold) rather than a rod.

    Parameters
    ----------
    table : Table
        Objects with ``area_um2`` and ``area_px`` (:func:`samscope.analysis.measure_objects`).
    dot_max_area_um2 : float
        Largest area of a dot, µm² (default 1.28 = 200 px at 80 nm). Rows without a physical
        area (no pixel size) are compared in pixels, against the threshold at 80 nm.

    Returns
    -------
    ndarray of bool
    """
    t = _check_threshold(dot_max_area_um2)
    px = np.asarray(table["area_px"], np.float64)
    um = np.asarray(table["area_um2"], np.float64) if "area_um2" in table else np.full_like(px, np.nan)
    t_px = t / (REFERENCE_PIXEL_NM / 1e3) ** 2
    return np.where(np.isfinite(um), um <= t, px <= t_px)


@dataclass(frozen=True)
class DotRodSummary:
    """Counts and areas of dots and rods in one image (or any group of objects).

    Attributes
    ----------
    n_dot, n_rod : int
    dot_area_px, rod_area_px : float
        Summed areas in pixels.
    dot_area_um2, rod_area_um2 : float
        Summed areas in µm² (NaN when an object has no physical size).
    threshold_um2 : float
        Largest dot area, µm².
    physical : bool
        True when the objects were classified by their area in µm², False when in pixels
        (no pixel size; the threshold applied as ``threshold_um2`` at 80 nm).
    """

    n_dot: int
    n_rod: int
    dot_area_px: float
    rod_area_px: float
    dot_area_um2: float
    rod_area_um2: float
    threshold_um2: float
    physical: bool

    @property
    def n(self) -> int:
        """Number of objects."""
        return self.n_dot + self.n_rod

    @staticmethod
    def _ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    @property
    def dot_count_fraction(self) -> float:
        """Dots / all objects (NaN without objects)."""
        return self._ratio(self.n_dot, self.n)

    @property
    def rod_count_fraction(self) -> float:
        """Rods / all objects."""
        return self._ratio(self.n_rod, self.n)

    @property
    def dot_area_fraction(self) -> float:
        """Area of the dots / area of all objects (the same in pixels and in µm²)."""
        return self._ratio(self.dot_area_px, self.dot_area_px + self.rod_area_px)

    @property
    def rod_area_fraction(self) -> float:
        """Area of the rods / area of all objects."""
        return self._ratio(self.rod_area_px, self.dot_area_px + self.rod_area_px)

    def as_row(self) -> dict[str, float | int]:
        """Flat values for a per-image table."""
        return {
            "n_dot": self.n_dot,
            "n_rod": self.n_rod,
            "dot_count_fraction": self.dot_count_fraction,
            "rod_count_fraction": self.rod_count_fraction,
            "dot_area_fraction": self.dot_area_fraction,
            "rod_area_fraction": self.rod_area_fraction,
            "dot_area_px": self.dot_area_px,
            "rod_area_px": self.rod_area_px,
            "dot_area_um2": self.dot_area_um2,
            "rod_area_um2": self.rod_area_um2,
            "mean_dot_area_um2": self._ratio(self.dot_area_um2, self.n_dot),
            "mean_rod_area_um2": self._ratio(self.rod_area_um2, self.n_rod),
        }


def dot_rod_summary(table: Table, *, dot_max_area_um2: float = DOT_MAX_AREA_UM2) -> DotRodSummary:
    """Count dots and rods and sum their areas (see the module docstring for the rule).

    Parameters
    ----------
    table : Table
        Objects of one image, with ``area_px`` and ``area_um2``.
    dot_max_area_um2 : float
        Largest dot area, µm².

    Returns
    -------
    DotRodSummary

    Examples
    --------
    >>> from samscope.analysis import Table
    >>> t = Table({"area_px": [100, 300, 150], "area_um2": [0.64, 1.92, 0.96]})
    >>> s = dot_rod_summary(t)
    >>> s.n_dot, s.n_rod, round(s.dot_area_fraction, 3)
    (2, 1, 0.455)
    """
    t = _check_threshold(dot_max_area_um2)
    dot = is_dot(table, dot_max_area_um2=t)
    px = np.asarray(table["area_px"], np.float64)
    um = (np.asarray(table["area_um2"], np.float64) if "area_um2" in table
          else np.full_like(px, np.nan))
    physical = bool(np.isfinite(um).all()) and len(um) > 0
    return DotRodSummary(
        n_dot=int(dot.sum()),
        n_rod=int((~dot).sum()),
        dot_area_px=float(px[dot].sum()),
        rod_area_px=float(px[~dot].sum()),
        dot_area_um2=float(um[dot].sum()),
        rod_area_um2=float(um[~dot].sum()),
        threshold_um2=t,
        physical=physical,
    )
