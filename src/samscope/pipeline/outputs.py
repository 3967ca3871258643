"""Output names of a batch run, and the checks every output location passes before a model runs.

:func:`plan_outputs` gives each input its output files (``STEM_labels.tif``, ``STEM_objects.csv``,
``STEM_masks.tif``, ``STEM_overlay.png``, ``STEM_segmentation.json`` under ``OUTPUT/relative``,
or beside the image without an output folder) and refuses, before anything is computed:

- two inputs that would write the same file (the message names both),
- an output that is one of the inputs (or inside an input zarr store),
- an output folder that is a file, an output file that is a folder, or a location that cannot
  be written (the nearest existing folder is checked, since folders are only created when
  there is something to write).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from samscope.errors import InputError
from samscope.pipeline.inputs import InputFile

__all__ = ["OutputPaths", "Plan", "check_locations", "plan_outputs"]


@dataclass(frozen=True)
class OutputPaths:
    """Where the outputs of one image go (not every run writes every file).

    Attributes
    ----------
    labels : Path
        Label image (a label stack for stacks and time series).
    table : Path
        Per-object table; written last, so its presence marks the image done.
    masks : Path
        Overlapping masks, one per object (modes amg, apg, foreground on 2-D images).
    overlay : Path
        The objects outlined on the image (2-D images).
    record : Path
        The per-image record (model, mode, pixel size, diameter and scale used, counts).
    """

    labels: Path
    table: Path
    masks: Path
    overlay: Path
    record: Path

    @classmethod
    def for_stem(cls, folder: Path, stem: str) -> OutputPaths:
        """The outputs of an image whose name without suffix is ``stem``, in ``folder``."""
        return cls(
            labels=folder / f"{stem}_labels.tif",
            table=folder / f"{stem}_objects.csv",
            masks=folder / f"{stem}_masks.tif",
            overlay=folder / f"{stem}_overlay.png",
            record=folder / f"{stem}_segmentation.json",
        )

    def paths(self) -> list[Path]:
        """Every path, in field order."""
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Plan:
    """The images of a batch with their outputs.

    Attributes
    ----------
    items : list of (InputFile, OutputPaths)
    dropped : list of InputFile
        Inputs found in a folder or by a pattern that are outputs of another input of the same
        batch (``a_labels.tif`` beside ``a.tif`` when a folder is segmented twice without
        ``-o``): left out, not segmented. An input named on its own is never left out (its
        clash with another input's output is an error).
    """

    items: list[tuple[InputFile, OutputPaths]]
    dropped: list[InputFile]


def plan_outputs(
    inputs: Sequence[InputFile],
    output: Path | None,
    *,
    single_file: Path | None = None,
    writes: Sequence[str] = ("labels", "table", "masks", "overlay", "record"),
) -> Plan:
    """The outputs of each input (``OUTPUT/relative/STEM_*`` or beside the image).

    Parameters
    ----------
    inputs : sequence of InputFile
    output : Path or None
        Output folder; None writes beside each image.
    single_file : Path, optional
        The labels file of a run with one input (``samscope baseline ... -o labels.tif``).
    writes : sequence of str
        The :class:`OutputPaths` fields the run may write (checked against the inputs).

    Raises
    ------
    InputError
        When the output folder is a file, two inputs would write the same file, or an output
        is one of the inputs.
    """
    if output is not None and output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    planned: list[tuple[InputFile, OutputPaths]] = []
    for item in inputs:
        folder = item.path.parent if output is None else output / item.relative
        outs = OutputPaths.for_stem(folder, item.stem)
        if single_file is not None:
            outs = dataclasses.replace(outs, labels=single_file)
        planned.append((item, outs))
    kept, dropped = _drop_own_outputs(planned, writes)
    _refuse_clashes(kept)
    _refuse_inputs_as_outputs([item for item, _ in kept], kept, writes)
    return Plan(kept, dropped)


def _drop_own_outputs(
    planned: list[tuple[InputFile, OutputPaths]], writes: Sequence[str]
) -> tuple[list[tuple[InputFile, OutputPaths]], list[InputFile]]:
    """Leave out inputs that another (kept) input of the batch writes; shorter stems first."""
    produced: set[str] = set()
    drop: set[int] = set()
    order = sorted(range(len(planned)), key=lambda i: len(planned[i][0].stem))
    for i in order:
        item, outs = planned[i]
        if _key(item.path) in produced and not item.named:
            drop.add(i)
            continue
        produced.update(_key(getattr(outs, w)) for w in writes)
    kept = [p for i, p in enumerate(planned) if i not in drop]
    return kept, [planned[i][0] for i in sorted(drop)]


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def _refuse_clashes(planned: Sequence[tuple[InputFile, OutputPaths]]) -> None:
    owner: dict[str, Path] = {}
    for item, outs in planned:
        key = _key(outs.labels)
        if key in owner:
            raise InputError(
                f"inputs '{owner[key]}' and '{item.path}' would both write '{outs.labels}'; "
                "rename one, or segment them into separate output folders (-o), or give their "
                "common folder as a glob (e.g. 'data/**/*.tif') to keep the folder structure"
            )
        owner[key] = item.path


def _refuse_inputs_as_outputs(
    inputs: Sequence[InputFile],
    planned: Sequence[tuple[InputFile, OutputPaths]],
    writes: Sequence[str],
) -> None:
    files = {_key(i.path): i.path for i in inputs}
    stores = [Path(_key(i.path)) for i in inputs if i.path.is_dir()]
    for _, outs in planned:
        for path in (getattr(outs, w) for w in writes):
            key = _key(path)
            if key in files:
                raise InputError(
                    f"output '{path}' would overwrite the input '{files[key]}'; "
                    "choose another output folder (-o)"
                )
            for store in stores:
                if Path(key).is_relative_to(store):
                    raise InputError(
                        f"output '{path}' would be written inside the input store '{store}'; "
                        "choose another output folder (-o)"
                    )


def check_locations(paths: Iterable[Path]) -> None:
    """Check that every path can be written, before anything is computed.

    A path that exists must be a file; its folder (or the nearest existing folder above it,
    since folders are made only when there is something to write) must be a folder that this
    process can write into (probed with a hidden temporary file, removed at once).

    Raises
    ------
    InputError
        Naming the path and what is wrong with it.
    """
    from samscope.io.paths import nearest_existing, unwritable_reason

    checked: set[Path] = set()
    for path in paths:
        if path.is_dir():
            raise InputError(f"output '{path}' is a folder; expected a file name")
        folder = path.parent
        if folder in checked:
            continue
        checked.add(folder)
        existing = nearest_existing(folder)
        if not existing.is_dir():
            raise InputError(
                f"cannot write '{path}': '{existing}' is a file, not a folder"
            )
        reason = unwritable_reason(existing)  # probed: permission bits, ACLs, read-only mounts
        if reason is not None:
            raise InputError(
                f"cannot write '{path}': folder '{existing}' is not writable ({reason}); "
                "choose another output location"
            )
