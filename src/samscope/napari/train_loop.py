"""Training in the loop without Qt: annotated pairs → a small fine-tuning run → before/after numbers.

:func:`annotated_pairs` finds the images of a folder that the annotators have saved labels for;
:func:`loop_config` is the :class:`~samscope.training.config.TrainConfig` of a short fine-tuning
run on them (validated on the same images: the point is to help annotate *this* data);
:func:`one_click_score` is the interactive protocol with one click per object
(:func:`samscope.evaluation.interactive.run_interactive`), the number shown before and after;
:func:`fine_tune` runs it all with progress callbacks and cancellation.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["LoopResult", "annotated_pairs", "fine_tune", "loop_config", "one_click_score"]


@dataclass(frozen=True)
class LoopResult:
    """What a run in the loop produced.

    Attributes
    ----------
    model_path : Path or None
        The exported checkpoint (``load_model(path)`` loads it); None when cancelled early.
    before, after : float
        Mean IoU of one click per object on the annotated images, base and fine-tuned model
        (``after`` NaN when cancelled).
    steps : int
    cancelled : bool
    checkpoint : Path or None
        The run's ``last.pt`` (kept on cancellation, so nothing done is lost).
    """

    model_path: Path | None
    before: float
    after: float
    steps: int
    cancelled: bool
    checkpoint: Path | None


def annotated_pairs(images: str | Path, annotations: str | Path) -> list[tuple[Path, Path]]:
    """``(image, STEM_labels.tif)`` for every image of ``images`` with a finished annotation."""
    from samscope.io import list_images
    from samscope.pipeline import OutputPaths, output_stem

    annotations = Path(annotations)
    pairs = []
    for f in list_images(images):
        if annotations in f.parents:
            continue
        outs = OutputPaths.for_stem(annotations, output_stem(f))
        if outs.table.exists() and outs.labels.exists():
            pairs.append((f, outs.labels))
    return pairs


def _stage(pairs: Sequence[tuple[Path, Path]], folder: Path) -> tuple[Path, Path]:
    """Copy the pairs into ``folder/images`` and ``folder/labels`` under the same names."""
    img_dir, lab_dir = folder / "images", folder / "labels"
    for d in (img_dir, lab_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for i, (img, lab) in enumerate(pairs):
        name = f"{i:04d}_{Path(img).name.split('.')[0]}.tif"
        if Path(img).suffix.lower() in (".tif", ".tiff"):
            shutil.copy2(img, img_dir / name)
        else:
            from samscope.io import read_image, write_image

            write_image(img_dir / name, read_image(img))
        shutil.copy2(lab, lab_dir / name)
    return img_dir, lab_dir


def loop_config(base_model: str, images: Path, labels: Path, out_dir: Path, *, steps: int = 50,
                patch_size: int = 256, lr: float = 1e-5, instance_head: bool = False,
                distance_head: bool = False, name: str = "samscope-finetuned"):
    """The TrainConfig of a short fine-tuning run on annotated images (validated on them)."""
    from samscope.training.config import TrainConfig

    steps = int(steps)
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    return TrainConfig.from_dict({
        "data": {"train_images": [str(images)], "train_labels": [str(labels)],
                 "val_images": [str(images)], "val_labels": [str(labels)],
                 "patch_size": int(patch_size), "n_val": 2, "min_objects": 1},
        "augment": {"rotation": "90", "scale_min": 1.0, "scale_max": 1.0},
        "model": {"model": base_model, "init": "pretrained"},
        "objectives": {"n_objects": 8, "n_sub_iterations": 4, "instance_head": instance_head,
                       "distance_head": distance_head},
        "optim": {"lr": float(lr), "max_steps": steps, "batch_size": 1, "val_every": steps,
                  "scheduler": "constant", "early_stopping": 0},
        "run": {"name": name, "out_dir": str(out_dir), "checkpoint_every": max(1, steps // 4),
                "progress": False, "resume": False},
    })


def one_click_score(model: Any, pairs: Sequence[tuple[Any, Any]]) -> float:
    """Mean IoU of one click (interior point) per object, over every object of every pair."""
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.interactive import model_segmenter, run_interactive
    from samscope.io import read_image, read_labels

    ious = []
    for img, lab in pairs:
        image = np.asarray(read_image(img).data) if isinstance(img, str | Path) else np.asarray(img)
        labels = np.asarray(read_labels(lab)) if isinstance(lab, str | Path) else np.asarray(lab)
        if not labels.any():
            continue
        emb = compute_embeddings(image, model)
        result = run_interactive(model_segmenter(model, emb), labels, mode="point", n_iterations=0)
        ious.extend(result.iou[:, 0].tolist())
    return float(np.mean(ious)) if ious else float("nan")


def fine_tune(base_model: str, pairs: Sequence[tuple[Path, Path]], out_dir: str | Path, *,
              steps: int = 50, patch_size: int = 256, lr: float = 1e-5,
              on_step: Callable[[int, int, float], None] | None = None,
              cancel: threading.Event | None = None,
              on_stage: Callable[[str], None] | None = None) -> LoopResult:
    """Score the base model, fine-tune it on ``pairs``, score the result (see module docstring).

    ``on_step(step, steps, loss)`` is called after every optimiser step (from the calling
    thread); setting ``cancel`` stops after the current step, keeping ``last.pt``.
    """
    from samscope.models.registry import load_model
    from samscope.training.trainer import Trainer

    if not pairs:
        raise InputError("no annotated images yet: annotate and save some first")
    say = on_stage or (lambda _text: None)
    out_dir = Path(out_dir)
    say("scoring the current model on the annotated images …")
    base = load_model(base_model, device="cpu")
    before = one_click_score(base, pairs)
    images, labels = _stage(pairs, out_dir / "data")
    config = loop_config(base_model, images, labels, out_dir / "run", steps=steps,
                         patch_size=patch_size, lr=lr,
                         instance_head=base.instance_head is not None,
                         distance_head=getattr(base, "distance_head", None) is not None)
    del base

    class LoopTrainer(Trainer):
        def train_step(self, batches):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            losses = super().train_step(batches)
            if on_step is not None:
                on_step(self.step, config.optim.max_steps, float(losses["loss"]))
            return losses

    say("training …")
    trainer = LoopTrainer(config, log=lambda _line: None)
    last = trainer.ckpt_dir / "last.pt"
    try:
        result = trainer.fit()
    except KeyboardInterrupt:
        return LoopResult(None, before, float("nan"), trainer.step, True,
                          last if last.is_file() else None)
    say("scoring the fine-tuned model …")
    tuned = load_model(result.model_path, device="cpu")
    after = one_click_score(tuned, pairs)
    return LoopResult(result.model_path, before, after, result.step, False, last)
