"""medswin.training: ``medswin train`` and the recipes in ``pipelines/train/``.

* :mod:`medswin.training.config` -- pipeline YAML -> validated :class:`~medswin.training.config.Pipeline`;
* :mod:`medswin.training.data` -- datalist cases -> cached, preprocessed, augmented MONAI samples;
* :mod:`medswin.training.objectives` -- loss, optimiser, learning-rate schedule;
* :mod:`medswin.training.state` -- resumable state in safetensors + JSON (no pickles);
* :mod:`medswin.training.trainer` -- :func:`~medswin.training.trainer.train` (single process or torchrun DDP);
* :mod:`medswin.training.demo_model` -- ``make demo-model``.
"""
