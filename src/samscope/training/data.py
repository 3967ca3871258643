"""Training data: labelled images from files or the simulator, patches, targets, batches.

Sources
-------
- Files (:func:`load_labelled`): images and label images in any format :mod:`samscope.io` reads
  (TIFF, PNG, zarr, …), paired in order; a stack ``(n, y, x)`` gives ``n`` samples. Objects that
  overlap come as stacks of binary masks ``(n_objects, y, x)``, one file per image.
- The simulator (:class:`SimulatedSource`): samples drawn on the fly from
  :func:`samscope.simulate.stream`; validation uses indices the training never draws.

Each image is normalised once, by percentiles (1 / 99.8, as :func:`samscope.image.prepare_input`
at inference), to 0–1. Every patch is a pure function of ``(seed, index)``
(:class:`PatchDataset`), whichever data-loader worker or process draws it, so a resumed run
draws the same patches it would have drawn.

Everything is checked before training starts: image and label shapes must agree, labels must be
integers, and some sample must hold an object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samscope.errors import InputError
from samscope.io import has_colour_axis
from samscope.training.augment import Patch, sample_patch
from samscope.training.config import AugmentConfig

__all__ = [
    "Batch",
    "IndexSampler",
    "LabelledImage",
    "PatchDataset",
    "SimulatedSource",
    "WeightedSamples",
    "collate",
    "from_arrays",
    "load_labelled",
    "parse_slice",
    "split_samples",
]


@dataclass(frozen=True, eq=False)
class LabelledImage:
    """One image with its instance ground truth, ready for patch sampling.

    Attributes
    ----------
    image : numpy.ndarray
        float32 ``(C, H, W)`` normalised to 0–1 (C = 1 grey, 3 RGB).
    labels : numpy.ndarray
        int32 ``(H, W)``, 0 = background.
    masks : numpy.ndarray or None
        bool ``(n, H, W)`` possibly overlapping object masks, or None.
    name : str
        Where it came from (for messages).
    """

    image: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    name: str

    @property
    def n_objects(self) -> int:
        """Number of objects."""
        if self.masks is not None:
            return int(self.masks.shape[0])
        return int(np.count_nonzero(np.bincount(self.labels.ravel())[1:]))


def _normalise(image: np.ndarray, name: str) -> np.ndarray:
    from samscope.image import normalize_percentile

    data = np.asarray(image)
    if data.ndim == 2:
        data = data[None]
    elif data.ndim == 3 and has_colour_axis(data.shape) and data.shape[0] not in (1, 3):
        data = np.moveaxis(data[..., :3], -1, 0)
    elif not (data.ndim == 3 and data.shape[0] in (1, 3)):
        raise InputError(f"{name}: expected a 2-D grey or RGB image, got shape {data.shape}")
    try:
        return normalize_percentile(data, low=1.0, high=99.8).astype(np.float32, copy=False)
    except InputError as err:
        raise InputError(f"{name}: {err}") from None


def from_arrays(
    image: np.ndarray,
    labels: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    *,
    name: str = "array",
) -> LabelledImage:
    """Check and normalise one in-memory sample.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or RGB ``(H, W, 3)`` / ``(3, H, W)``, any real dtype.
    labels : numpy.ndarray, optional
        Integer ``(H, W)`` label image (whole-number floats are accepted).
    masks : numpy.ndarray, optional
        ``(n, H, W)`` binary masks of possibly overlapping objects; without ``labels`` a label
        image is derived from them (later masks win where they overlap).

    Raises
    ------
    InputError
        Shapes that differ, labels that are not integers, masks that are not binary.
    """
    from samscope.io import check_labels

    img = _normalise(image, name)
    shape = img.shape[1:]
    if labels is None and masks is None:
        raise InputError(f"{name}: a training sample needs labels or masks")
    mask_arr = None
    if masks is not None:
        mask_arr = np.asarray(masks)
        if mask_arr.ndim == 2:
            mask_arr = mask_arr[None]
        if mask_arr.ndim != 3 or mask_arr.shape[1:] != shape:
            raise InputError(
                f"{name}: masks must be (n_objects, {shape[0]}, {shape[1]}) to match the image, "
                f"got {mask_arr.shape}"
            )
        if mask_arr.dtype != bool:
            if mask_arr.dtype.kind not in "biuf" or not np.isin(np.unique(mask_arr), (0, 1, 255)).all():
                raise InputError(f"{name}: masks must be binary (0/1 or 0/255)")
            mask_arr = mask_arr > 0
        mask_arr = mask_arr[mask_arr.reshape(len(mask_arr), -1).any(axis=1)]
    if labels is not None:
        lab = check_labels(np.asarray(labels), source=name)
        if lab.shape != shape:
            raise InputError(
                f"{name}: image shape {tuple(shape)} and label shape {tuple(lab.shape)} differ"
            )
        lab = lab.astype(np.int32, copy=False)
    else:
        lab = np.zeros(shape, np.int32)
        for i, m in enumerate(mask_arr):
            lab[m] = i + 1
    return LabelledImage(img, lab, mask_arr, name)


def parse_slice(text: str) -> slice:
    """``"0:14"`` → ``slice(0, 14)``; ``"5"`` → ``slice(5, 6)``; ``""`` → everything."""
    text = text.strip()
    if not text:
        return slice(None)
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
    except ValueError:
        raise InputError(f"cannot read slice {text!r}: expected e.g. '0:14' or '3'") from None
    if len(parts) == 1:
        return slice(parts[0], parts[0] + 1 if parts[0] != -1 else None)
    if len(parts) > 3:
        raise InputError(f"cannot read slice {text!r}")
    return slice(*parts)


def _expand(entries: Sequence[str], what: str) -> list[Path]:
    from samscope.io import list_images

    if not entries:
        return []
    try:
        return list_images(list(entries))
    except InputError as err:
        raise InputError(f"{what}: {err}") from None


def _planes(data: np.ndarray, axes: str) -> np.ndarray:
    """Reshape to ``(n, y, x[, c])``: every non-spatial leading axis becomes samples."""
    lead = [a for a in axes if a not in "YXC"]
    shape = data.shape
    n = int(np.prod([shape[axes.index(a)] for a in lead])) if lead else 1
    tail = shape[len(lead):]
    return np.asarray(data).reshape(n, *tail)


def load_labelled(
    images: Sequence[str],
    labels: Sequence[str] = (),
    masks: Sequence[str] = (),
    *,
    slices: str = "",
) -> list[LabelledImage]:
    """Read image/label (and mask-stack) files into checked, normalised samples.

    Parameters
    ----------
    images : sequence of str
        Files, folders or glob patterns (see :func:`samscope.io.list_images`).
    labels : sequence of str
        The label images, expanded the same way; the i-th label file belongs to the i-th image.
    masks : sequence of str
        Stacks of overlapping binary masks ``(n_objects, y, x)``, one per (2-D) image.
    slices : str
        Slice of the samples of each stack file to keep (``"0:14"``); 2-D files are unaffected.

    Returns
    -------
    list of LabelledImage

    Raises
    ------
    InputError
        Unequal numbers of images and labels, shapes that differ, non-integer labels,
        unreadable files, or no object in any sample.
    """
    from samscope.io import read_image, read_labels

    image_paths = _expand(images, "images")
    label_paths = _expand(labels, "labels")
    mask_paths = _expand(masks, "masks")
    if not image_paths:
        raise InputError("no training images given")
    if not label_paths and not mask_paths:
        raise InputError("training images need labels (train_labels) or masks (train_masks)")
    for what, paths in (("label", label_paths), ("mask", mask_paths)):
        if paths and len(paths) != len(image_paths):
            raise InputError(
                f"{len(image_paths)} image file(s) but {len(paths)} {what} file(s); they are "
                f"paired in order, so the counts must agree (first image {image_paths[0]}, "
                f"first {what} file {paths[0]})"
            )
    pick = parse_slice(slices)
    out: list[LabelledImage] = []
    for i, path in enumerate(image_paths):
        data = read_image(path)
        planes = _planes(np.asarray(data.data), data.axes)
        lab_planes = None
        if label_paths:
            lab = read_labels(label_paths[i])
            lab_planes = lab.reshape(-1, *lab.shape[-2:])
            if lab_planes.shape[0] != planes.shape[0] or lab_planes.shape[1:] != planes.shape[1:3]:
                if planes.shape[0] == lab_planes.shape[0] == 1:
                    what = f"has shape {planes.shape[1:3]} but labels {label_paths[i]} have {lab.shape}"
                else:
                    what = (
                        f"has {planes.shape[0]} plane(s) of {planes.shape[1:3]} but labels "
                        f"{label_paths[i]} have {lab_planes.shape[0]} of {lab_planes.shape[1:]}"
                    )
                raise InputError(f"image {path} {what}; image and label shapes must agree")
        mask_stack = None
        if mask_paths:
            if planes.shape[0] != 1:
                raise InputError(f"{path}: mask stacks are supported for 2-D images only")
            mask_stack = np.asarray(read_image(mask_paths[i], axes=None).data)
        indices = range(planes.shape[0])
        if planes.shape[0] > 1:
            indices = indices[pick]
        for j in indices:
            name = f"{path.name}[{j}]" if planes.shape[0] > 1 else path.name
            out.append(
                from_arrays(
                    planes[j],
                    lab_planes[j] if lab_planes is not None else None,
                    mask_stack,
                    name=name,
                )
            )
    if not out:
        raise InputError(f"the slice {slices!r} selects no sample")
    check_has_objects(out, "training data")
    return out


def check_has_objects(samples: Sequence[LabelledImage], what: str) -> None:
    """Raise :class:`InputError` if no sample holds an object."""
    if not any(s.n_objects for s in samples):
        raise InputError(
            f"{what}: none of the {len(samples)} sample(s) holds an object (all labels are 0); "
            "check that the label files belong to the images"
        )


def split_samples(
    samples: Sequence[LabelledImage], fraction: float, rng: np.random.Generator
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """Hold out ``fraction`` of the samples for validation (at least one).

    A single sample is split spatially instead: its last ``fraction`` of rows (columns when it is
    wider than tall) validate, the rest trains.
    """
    samples = list(samples)
    if fraction <= 0:
        raise InputError("no validation data: give val_images or a val_fraction > 0")
    if len(samples) == 1:
        s = samples[0]
        h, w = s.labels.shape
        axis = 0 if h >= w else 1
        size = (h, w)[axis]
        cut = int(round(size * (1 - fraction)))
        if cut <= 0 or cut >= size:
            raise InputError(f"{s.name}: too small to split for validation")

        def part(sl: slice, suffix: str) -> LabelledImage:
            index = (slice(None), sl) if axis == 0 else (slice(None), slice(None), sl)
            masks = s.masks[index] if s.masks is not None else None
            if masks is not None:
                masks = masks[masks.reshape(len(masks), -1).any(axis=1)]
            lab_index = index[1:]
            return LabelledImage(s.image[index], s.labels[lab_index], masks, s.name + suffix)

        return [part(slice(0, cut), " (train part)")], [part(slice(cut, None), " (val part)")]
    n_val = max(1, int(round(len(samples) * fraction)))
    order = rng.permutation(len(samples))
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


class SimulatedSource:
    """Samples from :func:`samscope.simulate.stream`, addressed by index.

    Parameters
    ----------
    kind : str
        ``"nuclei"``, ``"cells"`` or ``"mitochondria"``.
    seed : int
        Root seed.
    size : int
        Side of the simulated images.
    offset : int
        Index of the first sample (validation uses ``0 … n_val − 1``, training starts after).
    """

    def __init__(self, kind: str, *, seed: int, size: int, offset: int = 0) -> None:
        self.kind, self.seed, self.size, self.offset = kind, int(seed), int(size), int(offset)

    def sample(self, index: int) -> LabelledImage:
        """Simulated sample ``offset + index``."""
        from samscope.simulate import stream

        i = self.offset + int(index)
        s = next(stream(self.kind, seed=self.seed, shape=(self.size, self.size), start=i))
        return from_arrays(s.image, s.labels, s.masks, name=f"{self.kind}#{i}")


class WeightedSamples(Sequence):
    """Groups of samples drawn with given weights (a group is e.g. one dataset).

    Behaves as the flat sequence of all samples; :attr:`probabilities` gives each sample's
    chance of being drawn (its group's weight shared equally among the group's samples).
    """

    def __init__(self, groups: Sequence[Sequence[LabelledImage]], weights: Sequence[float]) -> None:
        if len(groups) != len(weights):
            raise InputError("one weight per group of samples is needed")
        self._items = [s for g in groups for s in g]
        total = float(sum(w for g, w in zip(groups, weights, strict=True) if len(g)))
        if not self._items or total <= 0:
            raise InputError("weighted training data: no sample has a weight above 0")
        p = np.concatenate(
            [np.full(len(g), w / total / len(g)) for g, w in zip(groups, weights, strict=True) if len(g)]
        )
        self.probabilities = p / p.sum()

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        return self._items[index]


Source = Sequence[LabelledImage] | SimulatedSource


@dataclass(frozen=True)
class TargetSpec:
    """Which dense targets a patch needs."""

    instance: bool = False
    distance: bool = False


def _targets(patch: Patch, spec: TargetSpec) -> dict:
    out: dict = {}
    if spec.instance:
        from samscope.instance.targets import instance_distance_targets

        out["instance_target"] = instance_distance_targets(patch.labels)
    if spec.distance:
        from samscope.instance.targets import distance_map_target

        out["distance_target"] = distance_map_target(patch.labels)[None]
    return out


class PatchDataset(torch.utils.data.Dataset):
    """Augmented patches, each a pure function of ``(seed, index)``.

    Parameters
    ----------
    source : sequence of LabelledImage or SimulatedSource
        Where images come from (a random one per index, or simulated sample ``index``).
    patch_size : int
    augment : AugmentConfig or None
        None: no augmentation (validation).
    seed : int
    min_objects, min_object_size : int
        See :func:`samscope.training.augment.sample_patch`.
    targets : TargetSpec
        Dense head targets to compute.
    """

    def __init__(
        self,
        source: Source,
        *,
        patch_size: int,
        augment: AugmentConfig | None,
        seed: int,
        min_objects: int = 1,
        min_object_size: int = 25,
        targets: TargetSpec = TargetSpec(),
    ) -> None:
        self.source = source
        self.patch_size = int(patch_size)
        self.augment = augment
        self.seed = int(seed)
        self.min_objects = int(min_objects)
        self.min_object_size = int(min_object_size)
        self.targets = targets

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(index),)))
        if isinstance(self.source, SimulatedSource):
            sample = self.source.sample(int(index))
        elif isinstance(self.source, WeightedSamples):
            sample = self.source[int(rng.choice(len(self.source), p=self.source.probabilities))]
        else:
            sample = self.source[int(rng.integers(len(self.source)))]
        patch = sample_patch(
            sample.image,
            sample.labels,
            sample.masks,
            self.patch_size,
            self.augment if self.augment is not None else AugmentConfig(),
            rng,
            min_objects=self.min_objects,
            min_object_size=self.min_object_size,
            augment=self.augment is not None,
        )
        item = {"image": patch.image, "labels": patch.labels, "masks": patch.masks}
        item.update(_targets(patch, self.targets))
        return item


class IndexSampler(torch.utils.data.Sampler):
    """Endless indices ``start, start + step, …`` (``step`` = number of processes under DDP)."""

    def __init__(self, start: int = 0, step: int = 1) -> None:
        self.start, self.step = int(start), int(step)

    def __iter__(self) -> Iterator[int]:
        i = self.start
        while True:
            yield i
            i += self.step


@dataclass
class Batch:
    """Collated patches (tensors; ``masks`` stays a list: each patch has its own object count).

    Attributes
    ----------
    image : torch.Tensor
        float32 ``(B, C, p, p)`` in 0–1.
    labels : torch.Tensor
        long ``(B, p, p)``.
    masks : list of (torch.Tensor or None)
        bool ``(n_b, p, p)`` overlapping masks per patch, or None.
    instance_target : torch.Tensor or None
        ``(B, 3, p, p)``.
    distance_target : torch.Tensor or None
        ``(B, 1, p, p)``.
    """

    image: torch.Tensor
    labels: torch.Tensor
    masks: list
    instance_target: torch.Tensor | None = None
    distance_target: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``."""

        def move(t):
            return t.to(device, non_blocking=True) if t is not None else None

        return Batch(
            move(self.image),
            move(self.labels),
            [move(m) for m in self.masks],
            move(self.instance_target),
            move(self.distance_target),
        )

    def __len__(self) -> int:
        return int(self.image.shape[0])


def collate(items: Sequence[dict]) -> Batch:
    """Stack dataset items into a :class:`Batch`."""

    def stack(key: str):
        if items[0].get(key) is None:
            return None
        return torch.from_numpy(np.stack([it[key] for it in items]))

    return Batch(
        image=stack("image"),
        labels=torch.from_numpy(np.stack([it["labels"] for it in items]).astype(np.int64)),
        masks=[torch.from_numpy(it["masks"]) if it["masks"] is not None else None for it in items],
        instance_target=stack("instance_target"),
        distance_target=stack("distance_target"),
    )


def default_workers(requested: int, device: torch.device) -> int:
    """``requested`` when >= 0, else 0 on the CPU (the cores train) and up to 4 on a GPU."""
    if requested >= 0:
        return requested
    if device.type == "cpu":
        return 0
    return min(4, max(1, (os.cpu_count() or 2) - 1))
