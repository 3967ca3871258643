"""The blockwise output: an OME-Zarr label image that records its settings and finished blocks.

Layout (zarr format 2, OME-Zarr 0.4)::

    OUT.zarr/
      .zattrs            samscope_blockwise: {format, settings, complete, n_objects};
                         multiscales + image-label once complete
      0/                 the stitched labels (chunks = the block cores), made by the last phase
      _blockwise/
        local/<k>/       block k's labels of its outer region (local ids), removed when complete
        segmented/<k>.json   written after local/<k>: block k is segmented (n, ids in its core)
        written/<k>.json     written after block k's core is in 0/

Every marker is written atomically after the data it vouches for, so a run killed at any point
leaves nothing that a later run takes as done; a re-run with the same settings skips the blocks
whose markers exist. An output made with other settings (or a folder that is not a samscope
blockwise output) is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["FORMAT", "BlockStore"]

FORMAT = 1
_ATTR = "samscope_blockwise"


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def _compressor():
    import numcodecs

    return numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)


class BlockStore:
    """A blockwise output on disk (only its path is pickled to Dask workers).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` folder.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __getstate__(self):
        return {"path": str(self.path)}

    def __setstate__(self, state):
        self.path = Path(state["path"])

    def __repr__(self) -> str:
        return f"BlockStore('{self.path}')"

    # -- opening -------------------------------------------------------------------------

    def _group(self, mode: str = "r"):
        import zarr

        return zarr.open_group(str(self.path), mode=mode, zarr_format=2)

    def stored_settings(self) -> dict | None:
        """The settings recorded in the output (None: not a samscope blockwise output)."""
        if not (self.path / ".zgroup").is_file():
            return None
        doc = dict(self._group("r").attrs).get(_ATTR)
        return doc if isinstance(doc, dict) else None

    def prepare(self, settings: dict, *, overwrite: bool = False) -> str:
        """Create the output, or check that an existing one has these settings.

        Returns
        -------
        str
            ``"new"``, ``"resume"`` (same settings, unfinished) or ``"complete"``.

        Raises
        ------
        InputError
            The path exists and is not a samscope blockwise output (never removed), or it was
            made with other settings and ``overwrite`` is False.
        """
        settings = _canonical(settings)
        if self.path.exists() or self.path.is_symlink():
            doc = self.stored_settings()
            if doc is None:
                raise InputError(
                    f"'{self.path}' exists and is not a samscope blockwise output; choose "
                    "another output (it is left untouched)"
                )
            diffs = _differences(doc.get("settings", {}), settings)
            if not diffs and doc.get("format") == FORMAT:
                return "complete" if doc.get("complete") else "resume"
            if not overwrite:
                shown = "; ".join(diffs[:3]) + (f"; … {len(diffs) - 3} more" if len(diffs) > 3 else "")
                raise InputError(
                    f"'{self.path}' was made with other settings ({shown}); choose another "
                    "output, run with the same settings to resume, or --overwrite to redo it"
                )
            shutil.rmtree(self.path)
        if not self.path.parent.is_dir():
            raise InputError(f"cannot write '{self.path}': folder '{self.path.parent}' does not exist")
        group = self._group("w")
        for sub in ("local", "segmented", "written"):
            group.require_group(f"_blockwise/{sub}")
        group.attrs[_ATTR] = {"format": FORMAT, "settings": settings, "complete": False}
        return "new"

    # -- phase 1: local labels -----------------------------------------------------------

    def write_local(self, flat: int, labels: np.ndarray, meta: dict) -> None:
        """Store block ``flat``'s local labels, then its ``segmented`` marker."""
        import zarr

        labels = np.ascontiguousarray(labels, dtype=np.uint32)
        chunks = tuple(min(s, 512) if i >= labels.ndim - 2 else min(s, 16)
                       for i, s in enumerate(labels.shape))
        arr = zarr.open_array(
            str(self.path / "_blockwise" / "local" / str(flat)), mode="w", zarr_format=2,
            shape=labels.shape, dtype=np.uint32, chunks=chunks, fill_value=0,
            compressor=_compressor(),
        )
        arr[...] = labels
        _write_json(self.path / "_blockwise" / "segmented" / f"{flat}.json", meta)

    def read_local(self, flat: int, slices: tuple[slice, ...] | None = None) -> np.ndarray:
        """Block ``flat``'s local labels (of ``slices`` inside its outer region)."""
        import zarr

        arr = zarr.open_array(str(self.path / "_blockwise" / "local" / str(flat)), mode="r",
                              zarr_format=2)
        return np.asarray(arr[...] if slices is None else arr[tuple(slices)])

    def _markers(self, kind: str) -> dict[int, dict]:
        return dict(self._iter_markers(kind))

    def _iter_markers(self, kind: str):
        folder = self.path / "_blockwise" / kind
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            if entry.suffix == ".json" and entry.stem.isdigit():
                try:
                    yield int(entry.stem), json.loads(entry.read_text())
                except (OSError, ValueError):
                    continue  # unreadable marker: the block is redone

    def segmented(self) -> dict[int, dict]:
        """Markers of the segmented blocks: ``{flat: {"n": …, "present": […], …}}``."""
        return self._markers("segmented")

    # -- phase 3: the stitched labels ----------------------------------------------------

    def final_array(self, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype):
        """The output label array, created (or recreated, when its dtype or shape differs)."""
        group = self._group("a")
        if "0" in group:
            arr = group["0"]
            if tuple(arr.shape) == tuple(shape) and np.dtype(arr.dtype) == np.dtype(dtype) \
                    and tuple(arr.chunks) == tuple(chunks):
                return arr
            del group["0"]
            shutil.rmtree(self.path / "_blockwise" / "written", ignore_errors=True)
            (self.path / "_blockwise" / "written").mkdir(parents=True, exist_ok=True)
        return group.create_array("0", shape=shape, dtype=dtype, chunks=chunks, fill_value=0,
                                  compressors=_compressor())

    def write_final(self, flat: int, slices: tuple[slice, ...], labels: np.ndarray,
                    meta: dict) -> None:
        """Write block ``flat``'s core into the output, then its ``written`` marker."""
        import zarr

        arr = zarr.open_array(str(self.path / "0"), mode="r+", zarr_format=2)
        arr[tuple(slices)] = labels.astype(arr.dtype, copy=False)
        _write_json(self.path / "_blockwise" / "written" / f"{flat}.json", meta)

    def written(self) -> dict[int, dict]:
        """Markers of the blocks whose cores are in the output."""
        return self._markers("written")

    def written_blocks(self) -> set[int]:
        """The blocks whose cores are in the output (their markers read one at a time, not kept)."""
        return {flat for flat, _ in self._iter_markers("written")}

    def written_marker(self, flat: int) -> dict:
        """Block ``flat``'s ``written`` record (its objects' measures)."""
        return json.loads((self.path / "_blockwise" / "written" / f"{flat}.json").read_text())

    def finish(self, *, n_objects: int, axes: str, pixel_size_nm: tuple[float, ...] | None,
               keep_blocks: bool = False) -> None:
        """Write the OME-Zarr metadata, mark the output complete, drop the local labels."""
        group = self._group("a")
        axes_meta, scale = [], []
        for i, a in enumerate(axes):
            entry = {"name": a.lower(), "type": "space"}
            value = None if pixel_size_nm is None else pixel_size_nm[i]
            if value is not None and np.isfinite(value):
                entry["unit"] = "micrometer"
                scale.append(float(value) / 1e3)
            else:
                scale.append(1.0)
            axes_meta.append(entry)
        group.attrs["multiscales"] = [{
            "version": "0.4",
            "name": self.path.stem,
            "axes": axes_meta,
            "datasets": [{"path": "0",
                          "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        }]
        group.attrs["image-label"] = {"version": "0.4"}
        doc = dict(group.attrs[_ATTR])
        doc.update(complete=True, n_objects=int(n_objects))
        group.attrs[_ATTR] = doc
        if not keep_blocks:
            shutil.rmtree(self.path / "_blockwise" / "local", ignore_errors=True)

    def n_objects(self) -> int | None:
        """Objects in a complete output."""
        doc = self.stored_settings() or {}
        return doc.get("n_objects") if doc.get("complete") else None
