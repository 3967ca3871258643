"""Labelled synthetic microscopy: mitochondria (Jadhav et al. 2026), fluorescent nuclei, label-free cells.

Each simulator returns :class:`SimulatedSample` objects (image, labels, optional overlapping
masks, foreground, parameters); :func:`stream` yields them endlessly for on-the-fly training and
:func:`write_dataset` writes a resumable dataset to disk (``samscope simulate`` on the command
line). Sample ``i`` of a run depends only on ``(seed, i)``.

>>> from samscope.simulate import mitochondria, nuclei, cells, stream, write_dataset  # doctest: +SKIP

The functions ``mitochondria``, ``nuclei`` and ``cells`` share their names with the modules that
define them; this package binds the names to the functions. Reach a module's other contents with
``from samscope.simulate.mitochondria import MitochondriaConfig``.

Importing this package loads numpy only; scipy, scikit-image and psfmodels load on first use.
"""

from samscope.simulate.cells import CellsConfig, cells
from samscope.simulate.dataset import KINDS, SimulatedSample, read_sample, stream, write_dataset
from samscope.simulate.mitochondria import MitochondriaConfig, mitochondria
from samscope.simulate.nuclei import NucleiConfig, nuclei

__all__ = [
    "KINDS",
    "CellsConfig",
    "MitochondriaConfig",
    "NucleiConfig",
    "SimulatedSample",
    "cells",
    "mitochondria",
    "nuclei",
    "read_sample",
    "stream",
    "write_dataset",
]
