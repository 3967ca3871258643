"""A small column table: named 1-D numpy columns of equal length, written as plain CSV.

Every measurement in :mod:`samscope.analysis` returns a :class:`Table`. It is deliberately
small (pandas is not a dependency): columns are numpy arrays, ``pandas.DataFrame(t.columns)``
gives a data frame, and :meth:`Table.write_csv` writes a file that ``pandas.read_csv`` loads
without options (one header line, comma separated, ``.`` decimals, empty cells for missing
values, ``True``/``False`` for booleans).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["Table", "read_csv_rows"]


def _column(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InputError(f"column {name!r} must be 1-D, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Table:
    """Named columns of equal length (a column is a 1-D numpy array).

    Parameters
    ----------
    columns : mapping of str to array-like
        Column name → values; order is kept. All columns have the same length.
    units : mapping of str to str
        Unit of a column where it has one (``"µm²"``, ``"px"``), for reports.

    Examples
    --------
    >>> t = Table({"id": [1, 2], "area_px": [10, 30]})
    >>> len(t), t["area_px"].sum(), t.names
    (2, np.int64(40), ['id', 'area_px'])
    """

    columns: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cols = {str(k): _column(v, str(k)) for k, v in dict(self.columns).items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}={len(v)}" for k, v in cols.items())
            raise InputError(f"table columns differ in length: {sizes}")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "units", {k: v for k, v in dict(self.units).items() if k in cols})

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"no column {name!r}; columns: {', '.join(self.columns)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return list(self.columns)

    def with_columns(self, columns: Mapping[str, Any], *, first: bool = False,
                     units: Mapping[str, str] | None = None) -> Table:
        """A copy with columns added or replaced (a scalar is repeated on every row).

        Parameters
        ----------
        columns : mapping of str to scalar or array-like
        first : bool
            Put the new columns before the existing ones (e.g. ``image``, ``condition``).
        units : mapping of str to str, optional
        """
        n = len(self)
        new = {}
        for k, v in columns.items():
            arr = np.asarray(v)
            new[k] = np.full(n, v, dtype=arr.dtype if arr.dtype.kind != "U" else object) \
                if arr.ndim == 0 else arr
        if first:
            merged = {**new, **{k: v for k, v in self.columns.items() if k not in new}}
        else:  # replaced columns keep their place
            merged = {**self.columns, **new}
        return Table(merged, {**self.units, **(units or {})})

    def select(self, rows: np.ndarray) -> Table:
        """Rows chosen by a boolean mask or an index array."""
        return Table({k: v[rows] for k, v in self.columns.items()}, self.units)

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts of Python scalars (``pandas.DataFrame(t.rows())`` works too)."""
        keys = self.names
        lists = [self.columns[k].tolist() for k in keys]
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*lists, strict=True)]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], *,
                  columns: Sequence[str] | None = None) -> Table:
        """Build from dict rows (missing keys become NaN for numbers, ``""`` for text)."""
        names: list[str] = list(columns) if columns is not None else []
        if columns is None:
            for row in rows:
                names.extend(k for k in row if k not in names)
        out = {}
        for k in names:
            values = [row.get(k) for row in rows]
            if all(v is None or isinstance(v, int | float | np.number | bool | np.bool_)
                   for v in values):
                if all(isinstance(v, bool | np.bool_) for v in values) and values:
                    out[k] = np.array(values, bool)
                else:
                    out[k] = np.array([np.nan if v is None else v for v in values], np.float64)
                    if values and all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                                      for v in values):
                        out[k] = out[k].astype(np.int64)
            else:
                out[k] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        return cls(out)

    @classmethod
    def concat(cls, tables: Iterable[Table]) -> Table:
        """Stack tables row-wise; a column missing from some table is filled with NaN / ``""``."""
        tables = [t for t in tables]
        names: list[str] = []
        units: dict[str, str] = {}
        for t in tables:
            names.extend(k for k in t.names if k not in names)
            units.update(t.units)
        out = {}
        for k in names:
            parts = []
            kinds = {t[k].dtype.kind for t in tables if k in t}
            text = bool(kinds & {"U", "O", "S"})
            for t in tables:
                if k in t:
                    parts.append(t[k].astype(object) if text else t[k])
                else:
                    fill = "" if text else np.nan
                    parts.append(np.full(len(t), fill, dtype=object if text else np.float64))
            out[k] = np.concatenate(parts)
        return cls(out, units)

    def write_csv(self, path: str | os.PathLike) -> Path:
        """Write atomically as CSV: header row, floats to 10 significant digits, NaN as empty."""
        from samscope.evaluation.report import atomic_write_text

        return atomic_write_text(path, self.to_csv())

    def to_csv(self) -> str:
        """The CSV text :meth:`write_csv` writes."""
        cells = [_format(self.columns[k]) for k in self.names]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.names)
        writer.writerows(zip(*cells, strict=True) if cells else [])
        return buf.getvalue()


def _format(col: np.ndarray) -> list[str]:
    kind = col.dtype.kind
    if kind == "f":
        out = np.char.mod("%.10g", col).astype(object)
        out[~np.isfinite(col)] = ""
        out[np.isposinf(col)] = "inf"
        out[np.isneginf(col)] = "-inf"
        return out.tolist()
    if kind == "b":
        return np.where(col, "True", "False").tolist()
    if kind in "iu":
        return col.astype(str).tolist()
    return ["" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(v)
            for v in col.tolist()]


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a CSV file with a header into dict rows of strings (BOM tolerated).

    Raises
    ------
    InputError
        When the file cannot be read or has no header.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read '{path}': {err}") from err
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InputError(f"'{path}' is empty or has no header row")
    return [dict(r) for r in reader]
