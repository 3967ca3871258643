"""The training loop: optimisation, validation, early stopping, checkpoints, resume, DDP, logs.

:func:`train` runs a whole :class:`~samscope.training.config.TrainConfig`; :class:`Trainer`
exposes the pieces (``validate``, ``save``, ``step``) for tests and notebooks.

A run folder holds ``checkpoints/last.pt`` (every ``checkpoint_every`` steps, on interruption
and at the end), ``checkpoints/best.pt`` (best validation metric), ``metrics.csv``,
``metrics.png``, ``config.toml`` and the exported inference model ``model.pt``. Checkpoints are
samscope-format files (:mod:`samscope.models.checkpoint`): ``load_model(path)`` loads any of
them; ``training`` inside holds the configuration, step, best metric, optimiser, scheduler and
random states, so a resumed run continues where it stopped — losing at most the steps since the
last checkpoint — and draws the same patches and prompts it would have drawn.

Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in ``DistributedDataParallel``;
every process draws its own patches, rank 0 validates, logs and writes.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samscope.errors import InputError
from samscope.training.config import TrainConfig
from samscope.training.data import (
    Batch,
    IndexSampler,
    PatchDataset,
    collate,
    default_workers,
)
from samscope.training.objectives import PromptSettings, TrainingModel
from samscope.training.run_log import append_row, plot_metrics, truncate_rows
from samscope.training.setup import Networks, build_networks, build_sources, trained_card
from samscope.training.validation import ValidationSet, validate

__all__ = ["TrainResult", "Trainer", "adamw", "train"]

@dataclass
class TrainResult:
    """What a run produced.

    Attributes
    ----------
    out_dir : Path
    model_path : Path or None
        The exported inference checkpoint (rank 0).
    step : int
        Steps done.
    metric_name : str
    initial_metric, best_metric : float
        Validation metric before training (NaN on a resumed run) and the best one reached.
    history : list of dict
        Validation rows of this process (``metrics.csv``'s ``val`` rows).
    stopped_early : bool
    """

    out_dir: Path
    model_path: Path | None
    step: int
    metric_name: str
    initial_metric: float
    best_metric: float
    history: list[dict]
    stopped_early: bool


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW with the fused kernel (one pass over all parameters, CPU and CUDA) where the
    parameters' device and dtype allow it, else the multi-tensor (``foreach``) one."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):  # a device/dtype without the fused kernel
        return torch.optim.AdamW(params, foreach=True, **kwargs)


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("model.device = 'cuda' but no CUDA device is available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1)[0])


class Trainer:
    """One training run (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
    log : callable, optional
        Receives one-line status messages (default: print on rank 0).
    """

    def __init__(self, config: TrainConfig, *, log=None) -> None:
        self.config = config
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_main = self.rank == 0
        self._log = log if log is not None else (print if self.is_main else (lambda *_: None))
        self.device = _device(config.model.device, self.local_rank)
        self.out_dir = Path(config.run.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        # -- everything that can fail on bad input, before any training -------------------
        self.sources = build_sources(config)
        self.nets: Networks = build_networks(config)
        self.card = trained_card(config, self.nets)
        o = config.objectives
        prompt = (
            PromptSettings(
                o.n_objects, o.n_sub_iterations, o.mask_prob, o.box_prob, o.box_distortion,
                o.overlap_aware, o.iou_weight,
            )  # fmt: skip
            if o.prompt
            else None
        )
        norm = self.card.normalisation
        self.model = TrainingModel(
            self.nets.sam,
            instance_head=self.nets.instance_head,
            distance_head=self.nets.distance_head,
            prompt=prompt,
            weights={"prompt": o.prompt_weight, "instance": o.instance_weight, "distance": o.distance_weight},
            mean=norm.mean,
            std=norm.std,
            checkpoint_encoder=config.model.checkpoint_encoder,
        ).to(self.device)
        self.metric_name = self._metric_name()
        self.maximise = self.metric_name != "loss"
        self.validation = ValidationSet.build(
            self.sources.val, self.sources.n_val, config, self.model, self.device
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        p = config.optim
        self.optimizer = adamw(params, lr=p.lr, weight_decay=p.weight_decay)
        self.scheduler = self._scheduler()
        self.amp_dtype = self._amp()
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.best_metric = -math.inf if self.maximise else math.inf
        self.best_step = -1
        self.bad_validations = 0
        self.initial_metric = math.nan
        self.history: list[dict] = []
        self._ddp = None

    # -- construction helpers ---------------------------------------------------------------
    def _metric_name(self) -> str:
        o, monitor = self.config.objectives, self.config.optim.monitor
        if monitor != "auto":
            return monitor
        if o.prompt:
            return "dice"
        return "msa"

    def _scheduler(self):
        p = self.config.optim
        if p.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="max" if self._metric_name() != "loss" else "min",
                factor=p.plateau_factor, patience=p.plateau_patience,
            )  # fmt: skip
        if p.scheduler == "linear":
            warm, total = p.warmup_steps, p.max_steps

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                return max(0.0, (total - step) / max(1, total - warm))

            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        return None

    def _amp(self) -> torch.dtype | None:
        amp = self.config.optim.amp
        if amp == "off" or (amp == "auto" and self.device.type != "cuda"):
            return None
        if amp == "fp16":
            return torch.float16
        return torch.bfloat16

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # -- state ------------------------------------------------------------------------------
    def training_state(self) -> dict:
        """Everything besides the weights that a resumed run needs."""
        state = {
            "config": self.config.to_dict(),
            "step": self.step,
            "best_metric": float(self.best_metric),
            "best_step": self.best_step,
            "metric_name": self.metric_name,
            "bad_validations": self.bad_validations,
            "initial_metric": float(self.initial_metric),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "torch_rng": torch.get_rng_state(),
        }
        return state

    def save(self, path: Path, *, with_training: bool = True) -> Path:
        """Write a samscope-format checkpoint of the current weights (rank 0 only)."""
        from samscope.models.checkpoint import save_checkpoint

        return save_checkpoint(
            path,
            self.nets.sam,
            instance_head=self.nets.instance_head,
            distance_head=self.nets.distance_head,
            format="samscope",
            architecture=self.nets.arch,
            card=self.card,
            training=self.training_state() if with_training else None,
        )

    def load(self, path: Path) -> None:
        """Restore weights, optimiser, scheduler and counters from a checkpoint of this run."""
        from samscope.models.checkpoint import load_state_dict_strict, read_checkpoint

        obj = read_checkpoint(path)
        training = obj.get("training") or {}
        if training.get("metric_name", self.metric_name) != self.metric_name:
            raise InputError(f"{path} monitors {training.get('metric_name')!r}, not {self.metric_name!r}")
        from samscope.models.checkpoint_keys import tie_shared_embedding

        sam_state = tie_shared_embedding(dict(obj["model_state"]))
        if obj.get("lora"):
            from samscope.models.lora import join_lora_state

            sam_state = join_lora_state(sam_state, obj["lora"]["state"])
        load_state_dict_strict(self.nets.sam, sam_state, what="model being trained")
        for head, key in ((self.nets.instance_head, "instance_head_state"),
                          (self.nets.distance_head, "distance_head_state")):  # fmt: skip
            if head is not None:
                if obj.get(key) is None:
                    raise InputError(f"{path} has no {key.replace('_state', '')} to resume")
                load_state_dict_strict(head, obj[key], what=key.replace("_state", ""))
        self.optimizer.load_state_dict(training["optimizer"])
        if self.scheduler is not None and training.get("scheduler") is not None:
            self.scheduler.load_state_dict(training["scheduler"])
        if training.get("scaler") is not None:
            self.scaler.load_state_dict(training["scaler"])
        self.step = int(training["step"])
        self.best_metric = float(training["best_metric"])
        self.best_step = int(training.get("best_step", -1))
        self.bad_validations = int(training.get("bad_validations", 0))
        self.initial_metric = float(training.get("initial_metric", math.nan))
        if training.get("torch_rng") is not None:
            torch.set_rng_state(training["torch_rng"])

    # -- data ------------------------------------------------------------------------------
    def _loader(self):
        c = self.config
        from samscope.training.data import TargetSpec

        dataset = PatchDataset(
            self.sources.train,
            patch_size=c.data.patch_size,
            augment=c.augment,
            seed=c.optim.seed,
            min_objects=c.data.min_objects,
            min_object_size=c.data.min_object_size,
            targets=TargetSpec(c.objectives.instance_head, c.objectives.distance_head),
        )
        batch = c.optim.batch_size
        start = self.step * c.optim.grad_accum * batch * self.world + self.rank
        workers = default_workers(c.data.num_workers, self.device)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch,
            sampler=IndexSampler(start, self.world),
            collate_fn=collate,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
        )

    # -- one optimiser step -----------------------------------------------------------------
    def train_step(self, batches: list[Batch]) -> dict[str, float]:
        """Forward, backward (accumulated over ``batches``) and one optimiser step."""
        model = self._ddp if self._ddp is not None else self.model
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        n = len(batches)
        for micro, batch in enumerate(batches):
            batch = batch.to(self.device)
            sync = contextlib.nullcontext()
            if self._ddp is not None and micro < n - 1:
                sync = self._ddp.no_sync()
            with sync:
                with self._autocast():
                    out = model(
                        batch.image, batch.labels, batch.masks, batch.instance_target,
                        batch.distance_target,
                        seed=_step_seed(self.config.optim.seed, self.step, micro, self.rank),
                    )  # fmt: skip
                loss = out["loss"] / n
                if loss.requires_grad:
                    self.scaler.scale(loss).backward()
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / n
        clip = self.config.optim.clip_grad
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], clip
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()
        self.step += 1
        return sums

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Validation metrics of the current weights (see :mod:`.validation`)."""
        with self._autocast():
            return validate(self.model, self.validation)

    def _improved(self, value: float) -> bool:
        delta = self.config.optim.min_delta
        if self.maximise:
            return value > self.best_metric + delta
        return value < self.best_metric - delta

    # -- logging ----------------------------------------------------------------------------
    def _csv_path(self) -> Path:
        return self.out_dir / "metrics.csv"

    def _write_row(self, row: dict) -> None:
        append_row(self._csv_path(), row)

    # -- the run ----------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until ``max_steps`` or early stopping; export the best model."""
        threads = self.config.run.threads
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            return self._fit()
        finally:
            torch.set_num_threads(previous)

    def _start_distributed(self) -> None:
        """Join (or start) the process group under torchrun and wrap the model in DDP."""
        self._owns_group = False
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group(backend)
            self._owns_group = True
        if self.world > 1:
            self._ddp = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )

    def _open_run(self, last: Path) -> bool:
        """Resume from ``last`` when asked and present; set up the run folder. True if resumed."""
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = False
        if c.run.resume and last.is_file():
            self.load(last)
            resumed = True
            self._log(f"resumed from {last} at step {self.step}")
        if self.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.toml").write_text(c.to_toml())
            if resumed:
                truncate_rows(self._csv_path(), self.step)
            elif self._csv_path().exists():
                self._csv_path().unlink()
        return resumed

    def _close_run(self, last: Path) -> Path | None:
        """Last checkpoint, export and plot (rank 0); leave the process group. The model path."""
        model_path = None
        if self.is_main:
            self.save(last)
            model_path = self.export()
            plot_metrics(self._csv_path(), self.out_dir / "metrics.png", self.metric_name)
        if self.world > 1:
            torch.distributed.barrier()
            if self._owns_group:
                torch.distributed.destroy_process_group()
        return model_path

    def _fit(self) -> TrainResult:
        c = self.config
        self._start_distributed()
        last = self.ckpt_dir / "last.pt"
        resumed = self._open_run(last)
        t0 = time.perf_counter()
        if not resumed and self.is_main:
            metrics = self.validate()
            self.initial_metric = metrics[self.metric_name_key]
            self._record_validation(metrics, t0)
        stopped_early = False
        interrupted = {"flag": False}
        previous = _install_sigterm(interrupted)
        loader = iter(self._loader()) if self.step < c.optim.max_steps else None
        bar = _progress(c, self.step, self.is_main)
        window_t, window_steps = time.perf_counter(), 0
        try:
            while self.step < c.optim.max_steps:
                batches = [next(loader) for _ in range(c.optim.grad_accum)]
                losses = self.train_step(batches)
                window_steps += 1
                now = time.perf_counter()
                rate = window_steps / max(now - window_t, 1e-9)
                if self.is_main:
                    self._write_row({
                        "kind": "train", "step": self.step, "time_s": now - t0,
                        "lr": self.optimizer.param_groups[0]["lr"], "steps_per_s": rate,
                        "peak_memory_mb": _peak_memory_mb(self.device), **losses,
                    })  # fmt: skip
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{losses['loss']:.4f}", best=f"{self.best_metric:.4f}")
                stop = False
                if self.step % c.optim.val_every == 0 or self.step == c.optim.max_steps:
                    stop = self._validation_round(t0)
                    window_t, window_steps = time.perf_counter(), 0
                if self.is_main and (self.step % c.run.checkpoint_every == 0 or interrupted["flag"]):
                    self.save(last)
                if interrupted["flag"]:
                    raise KeyboardInterrupt
                if stop:
                    stopped_early = True
                    self._log(
                        f"early stopping at step {self.step}: no improvement of {self.metric_name} "
                        f"in {self.bad_validations} validations"
                    )
                    break
        except KeyboardInterrupt:
            if self.is_main:
                self.save(last)
                self._log(f"interrupted; saved {last} at step {self.step}")
            raise
        finally:
            _restore_sigterm(previous)
            if bar is not None:
                bar.close()
        model_path = self._close_run(last)
        return TrainResult(
            self.out_dir, model_path, self.step, self.metric_name, self.initial_metric,
            self.best_metric, self.history, stopped_early,
        )  # fmt: skip

    @property
    def metric_name_key(self) -> str:
        """Key of the monitored metric in :func:`validate`'s result."""
        return {"dice": "val_dice", "msa": "val_msa", "loss": "val_loss"}[self.metric_name]

    def _record_validation(self, metrics: dict, t0: float) -> None:
        value = metrics[self.metric_name_key]
        row = {"kind": "val", "step": self.step, "time_s": time.perf_counter() - t0,
               "lr": self.optimizer.param_groups[0]["lr"], "metric": value, **metrics}  # fmt: skip
        self.history.append(row)
        self._write_row(row)
        parts = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self._log(f"step {self.step}: {parts}")
        if self._improved(value):
            self.best_metric = value
            self.best_step = self.step
            self.bad_validations = 0
            self.save(self.ckpt_dir / "best.pt")
        elif self.step > 0:
            self.bad_validations += 1

    def _validation_round(self, t0: float) -> bool:
        """Validate (rank 0), step the plateau scheduler, decide early stopping (all ranks)."""
        stop = torch.zeros(1, device=self.device)
        value = torch.zeros(1, device=self.device)
        if self.is_main:
            metrics = self.validate()
            self._record_validation(metrics, t0)
            value[0] = metrics[self.metric_name_key]
            patience = self.config.optim.early_stopping
            stop[0] = float(patience > 0 and self.bad_validations >= patience)
        if self.world > 1:
            torch.distributed.broadcast(value, 0)
            torch.distributed.broadcast(stop, 0)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(float(value[0]))
        return bool(stop[0])

    def export(self) -> Path:
        """Write ``model.pt``: the best checkpoint (else the last) as an inference model."""
        from samscope.training.export import export_model

        best = self.ckpt_dir / "best.pt"
        source = best if best.is_file() else self.ckpt_dir / "last.pt"
        return export_model(source, self.out_dir / "model.pt")


def _progress(config: TrainConfig, start: int, main: bool):
    if not (config.run.progress and main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.optim.max_steps, initial=start, desc="train", unit="step")


def _install_sigterm(flag: dict):
    """On SIGTERM, finish the current step, checkpoint and stop (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):  # pragma: no cover - exercised by process signals
        flag["flag"] = True

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def train(config: TrainConfig, *, log=None) -> TrainResult:
    """Run a training configuration to the end (see :class:`Trainer`).

    Examples
    --------
    >>> from samscope.training.config import load_config  # doctest: +SKIP
    >>> result = train(load_config("recipes/microsam_finetune.toml"))  # doctest: +SKIP
    >>> result.model_path  # doctest: +SKIP
    PosixPath('runs/…/model.pt')
    """
    return Trainer(config, log=log).fit()
