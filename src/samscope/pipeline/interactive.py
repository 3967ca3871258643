"""The interactive-segmentation protocol over image/ground-truth pairs: :func:`interactive_batch`.

What ``samscope evaluate-interactive`` runs: for each pair, the first prompts come from the
ground truth (or a shared prompts file), then :func:`samscope.evaluation.interactive.run_interactive`
adds corrective points; the run writes ``interactive.csv``/``.json`` (per iteration),
``run_MODEL.json`` (every point each object received), ``prompts.json`` (when derived here) and
``interactive.png``. Every output is checked before the model is loaded and written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samscope.errors import InputError
from samscope.models.registry import DEFAULT_MODEL
from samscope.pipeline.inputs import output_stem
from samscope.pipeline.outputs import check_locations
from samscope.pipeline.progress import Cancel, Progress, ProgressEvent, is_cancelled

#: How ``evaluate-interactive`` decodes corrections (:class:`InteractiveRequest`).
CORRECTION_RULES = ("usam", "samscope")

__all__ = ["InteractiveRequest", "InteractiveResult", "interactive_batch", "pair_files"]


def pair_files(
    first: Path, second: Path, *, names: tuple[str, str]
) -> list[tuple[str, Path, Path]]:
    """Pair two files, or the files of two folders by name (suffix ignored).

    Names pair as they are, or else without a role ending such as ``_labels``, ``_masks``,
    ``_gt`` or ``_cp_masks`` (so ``out/a_labels.tif`` pairs with ``gt/a.tif`` and
    ``gt/a_masks.tif``).

    Returns ``(name, first_file, second_file)`` in natural order; a file without a partner is an
    :class:`InputError` listing what is missing on each side.
    """
    from samscope.io import list_images

    for path, what in ((first, names[0]), (second, names[1])):
        if not path.exists():
            raise InputError(f"{what} '{path}' does not exist")
    first_dir = first.is_dir() and first.suffix.lower() != ".zarr"
    second_dir = second.is_dir() and second.suffix.lower() != ".zarr"
    if first_dir != second_dir:
        raise InputError(
            f"give two files or two folders: {names[0]} '{first}' is "
            f"{'a folder' if first_dir else 'a file'}, {names[1]} '{second}' is "
            f"{'a folder' if second_dir else 'a file'}"
        )
    if not first_dir:
        return [(output_stem(second), first, second)]
    files_a, files_b = list_images(first), list_images(second)
    a = {output_stem(p): p for p in files_a}
    b = {output_stem(p): p for p in files_b}
    if set(a) != set(b):
        bare_a, bare_b = _by_bare_name(files_a), _by_bare_name(files_b)
        if bare_a is not None and bare_b is not None and set(bare_a) == set(bare_b):
            a, b = bare_a, bare_b
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"no {names[1]} file for {', '.join(only_a[:10])}")
        if only_b:
            parts.append(f"no {names[0]} file for {', '.join(only_b[:10])}")
        raise InputError(
            f"files in '{first}' and '{second}' do not pair up by name: " + "; ".join(parts)
        )
    return [(name, a[name], b[name]) for name in a]


#: Endings that name a file's role rather than its image (samscope's, Cellpose's, common ones).
ROLE_ENDINGS = ("_labels", "_label", "_masks", "_mask", "_cp_masks", "_seg", "_segmentation",
                "_gt", "_groundtruth", "_ground_truth", "_pred", "_prediction")  # fmt: skip


def _by_bare_name(files: list[Path]) -> dict[str, Path] | None:
    """Files keyed by their name without a role ending (None when two files share a key)."""
    out: dict[str, Path] = {}
    for path in files:
        stem = output_stem(path)
        for ending in sorted(ROLE_ENDINGS, key=len, reverse=True):
            if stem.lower().endswith(ending) and len(stem) > len(ending):
                stem = stem[: -len(ending)]
                break
        if stem in out:
            return None
        out[stem] = path
    return out


@dataclass(frozen=True)
class InteractiveRequest:
    """An interactive-segmentation protocol run.

    Parameters
    ----------
    images, ground_truth : Path
        An image and its label image, or two folders paired by file name.
    output : Path
        Folder for the result files.
    model : str, Path or SamscopeModel
    checkpoint : Path, optional
    device : str, optional
    mode : {"point", "box"}
        First prompt: the object's interior centre point or its box.
    iterations : int
        Correction rounds after the first prompt.
    prompts : Path, optional
        Prompts file: used when it exists, else derived from the ground truth and saved there
        (default ``OUTPUT/prompts.json``).
    feed_logits : bool
        Feed each object's previous logits back to the model (the ``usam`` rule; ``samscope``
        always feeds them).
    corrections : {"usam", "samscope"}
        How a correction is decoded. ``usam`` (default, comparable with published µSAM
        figures): the object is re-decoded from all its prompts at the image's own size, one
        mask output. ``samscope``: what the napari annotator and ``samscope prompt
        --sequential`` do: the image embedded at the object-size scale
        (:func:`samscope.instance.scale.interactive_scale`: the model's size estimate), the
        best of three masks for a lone first point, and each correction decoded with the
        previous logits and applied only near its clicks
        (:func:`samscope.prompt_corrections.refine`).
    tile_shape, halo : (int, int), optional
    overwrite : bool
        Replace existing result files.
    """

    images: Path
    ground_truth: Path
    output: Path = Path("samscope-interactive")
    model: Any = DEFAULT_MODEL
    checkpoint: Path | None = None
    device: str | None = None
    mode: str = "point"
    iterations: int = 8
    prompts: Path | None = None
    feed_logits: bool = False
    corrections: str = "usam"
    tile_shape: tuple[int, int] | None = None
    halo: tuple[int, int] | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("point", "box"):
            raise InputError(f"--mode must be 'point' or 'box', got {self.mode!r}")
        if self.iterations < 0:
            raise InputError("--iterations must be >= 0")
        if self.corrections not in CORRECTION_RULES:
            raise InputError(f"--corrections must be one of {', '.join(CORRECTION_RULES)}, got {self.corrections!r}")
        for name in ("images", "ground_truth", "output"):
            object.__setattr__(self, name, Path(getattr(self, name)))

    @property
    def tag(self) -> str:
        """The model's name made safe for a file name (``run_TAG.json``)."""
        name = self.model if isinstance(self.model, str | os.PathLike) else self.model.name
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).stem)


@dataclass(frozen=True)
class InteractiveResult:
    """What :func:`interactive_batch` wrote.

    Attributes
    ----------
    rows : list of dict
        One row per iteration (mSA, SA50, … averaged over the images).
    results : list of samscope.evaluation.interactive.InteractiveResult
        Per image.
    files : dict of str to Path
        ``csv``, ``json``, ``png``, ``run`` and, when derived here, ``prompts``.
    cancelled : bool
    """

    rows: list[dict[str, Any]]
    results: list[Any]
    files: dict[str, Path]
    cancelled: bool = False


def _check_outputs(paths, overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace it")
    check_locations(paths)


def interactive_batch(
    request: InteractiveRequest,
    *,
    progress: Progress = None,
    cancel: Cancel = None,
    bars: bool = False,
) -> InteractiveResult:
    """Run the protocol on every pair of ``request`` and write the result files.

    Parameters
    ----------
    request : InteractiveRequest
    progress : callable, optional
        Called with ``image`` and ``done`` :class:`ProgressEvent` per pair.
    cancel : threading.Event or callable, optional
        Checked before each pair; a cancelled run writes nothing.
    bars : bool
        Progress bars (the CLI's).

    Raises
    ------
    InputError
        Before the model loads: result files that exist (without ``overwrite``) or cannot be
        written, pairs that do not match, a prompts file without prompts for an image; then
        images that are not 2-D or do not match their ground truth.
    """
    from samscope.evaluation.interactive import load_prompts

    out = request.output
    files = {
        "csv": out / "interactive.csv",
        "json": out / "interactive.json",
        "png": out / "interactive.png",
        "run": out / f"run_{request.tag}.json",
    }
    _check_outputs(list(files.values()), request.overwrite)
    pairs = pair_files(request.images, request.ground_truth, names=("image", "ground-truth"))
    prompts_path = request.prompts if request.prompts is not None else out / "prompts.json"
    reuse = request.prompts is not None and request.prompts.exists()
    if not reuse:
        _check_outputs([prompts_path], request.overwrite)
        files["prompts"] = prompts_path
    stored = {p.name: p for p in load_prompts(prompts_path)} if reuse else {}
    missing = [name for name, _, _ in pairs if reuse and name not in stored]
    if missing:
        raise InputError(
            f"prompts file '{prompts_path}' has no prompts for {', '.join(missing[:10])}"
        )
    net = _load(request)
    results, used = [], []
    from tqdm.auto import tqdm

    for i, (name, image_path, gt_path) in enumerate(
        tqdm(pairs, desc="images", unit="image", disable=not bars)
    ):
        if is_cancelled(cancel):
            return InteractiveResult([], results, {}, cancelled=True)
        if progress is not None:
            progress(ProgressEvent("image", index=i, n_images=len(pairs), path=image_path))
        first, result = _run_pair(request, net, name, image_path, gt_path, stored, bars)
        used.append(first)
        results.append(result)
        if progress is not None:
            progress(ProgressEvent("done", index=i, n_images=len(pairs), path=image_path))
    rows = _write_results(request, files, results, used, prompts_path, reuse)
    return InteractiveResult(rows, results, files)


def _load(request: InteractiveRequest) -> Any:
    if not isinstance(request.model, str | os.PathLike):
        return request.model
    from samscope.models.registry import load_model

    return load_model(request.model, checkpoint=request.checkpoint, device=request.device)


def _run_pair(request, net, name, image_path, gt_path, stored, bars):
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.interactive import derive_prompts, model_segmenter, run_interactive
    from samscope.io import read_image, read_labels

    labels = read_labels(gt_path)
    image = read_image(image_path)
    if image.axes == "ZYX" and labels.ndim == 3:  # a volume: the 3-D protocol (issue 12)
        return None, _run_volume(request, net, name, image, labels, image_path, stored)
    if image.axes not in ("YX", "YXC"):
        raise InputError(f"'{image_path}': the protocol needs 2-D images, got axes {image.axes}")
    if labels.shape != image.data.shape[:2]:
        raise InputError(
            f"'{image_path}' is {image.data.shape[:2]} but '{gt_path}' is {labels.shape}"
        )
    first = stored[name] if name in stored else derive_prompts(labels, name=name)
    ours = request.corrections == "samscope"
    scale = 1.0
    if ours:
        from samscope.instance.scale import interactive_scale

        scale, _ = interactive_scale(image.data, net)
    emb = compute_embeddings(
        image.data, net, tile_shape=request.tile_shape, halo=request.halo, axes=image.axes,
        scale=scale,
    )
    segmenter = (model_segmenter(net, emb, multimask="single-point", merge="local") if ours
                 else model_segmenter(net, emb))
    result = run_interactive(
        segmenter,
        labels,
        first,
        mode=request.mode,
        n_iterations=request.iterations,
        feed_logits=request.feed_logits or ours,
        progress=bars,
    )
    return first, result


def _run_volume(request, net, name, image, labels, image_path, stored):
    from samscope.evaluation.interactive_volume import run_interactive_volume
    from samscope.multidim.volume import interactive_propagator

    if labels.shape != image.data.shape:
        raise InputError(f"'{image_path}' is {image.data.shape} but its ground truth is {labels.shape}")
    if name in stored:
        raise InputError(f"'{image_path}': a volume takes its first prompts from the ground truth, not a prompts file")
    prop = interactive_propagator(image.data, net)
    return run_interactive_volume(prop, labels, mode=request.mode, n_iterations=request.iterations, name=name)


def _write_results(request, files, results, used, prompts_path, reuse) -> list[dict[str, Any]]:
    from samscope.evaluation.interactive import prompts_digest, save_prompts, save_run, summarise
    from samscope.evaluation.report import plot_curves, write_csv, write_json

    model = str(request.model) if isinstance(request.model, str | os.PathLike) else request.model.name
    request.output.mkdir(parents=True, exist_ok=True)
    used = [u for u in used if u is not None]  # volumes have none: the 3-D protocol's are in the run file
    if not reuse:
        save_prompts(prompts_path, used)
    rows = summarise(results)
    write_csv(files["csv"], rows)
    write_json(
        files["json"],
        {
            "model": model,
            "mode": request.mode,
            "iterations": request.iterations,
            "feed_logits": request.feed_logits or request.corrections == "samscope",
            "corrections": request.corrections,
            "prompts": str(prompts_path),
            "summary": rows,
            "images": [
                {"name": r.name, "msa": r.msa, "sa50": r.sa50, "sa75": r.sa75} for r in results
            ],
        },
    )
    save_run(
        files["run"],
        results,
        model=model,
        prompts_sha256=prompts_digest(used),
        feed_logits=request.feed_logits or request.corrections == "samscope",
    )
    its = [r["iteration"] for r in rows]
    plot_curves(
        files["png"],
        {"mSA": (its, [r["msa"] for r in rows]), "SA50": (its, [r["sa50"] for r in rows])},
        xlabel="correction iteration",
        ylabel="segmentation accuracy",
        title=f"{model}, first prompt: {request.mode}"
        + ("" if request.corrections == "usam" else f", {request.corrections} corrections"),
    )
    return rows
