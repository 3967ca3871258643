"""Training and fine-tuning: ``samscope train`` and its library.

Modules (imported on use; importing this package loads nothing):

- :mod:`~samscope.training.config` — :class:`TrainConfig` (frozen sections; TOML; flags);
- :mod:`~samscope.training.data`, :mod:`~samscope.training.augment` — labelled images from files
  or the simulator, patches with a minimum number of objects, augmentation shared by image and
  labels, batches;
- :mod:`~samscope.training.prompts` — simulated clicks and boxes, corrective clicks;
- :mod:`~samscope.training.losses` — dice (best-of-multimask, overlap-aware), IoU, head losses;
- :mod:`~samscope.training.objectives` — one training step (iterative prompting, heads);
- :mod:`~samscope.training.validation` — fixed validation prompts, dice and mSA;
- :mod:`~samscope.training.setup` — networks (from scratch or a checkpoint), freezing, LoRA;
- :mod:`~samscope.training.trainer` — the loop: :func:`~samscope.training.trainer.train`;
- :mod:`~samscope.training.export` — inference checkpoints;
- :mod:`~samscope.training.recipes` — the seeds' settings as TOML files.

Nothing in the core imports this package.
"""
