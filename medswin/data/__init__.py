"""medswin.data: datasets as validated documents, and made-up phantoms.

* :mod:`medswin.data.manifest` -- dataset descriptions and datalists (Decathlon / MONAI JSON),
  schema validation, path resolution, folds, per-case geometry checks;
* :mod:`medswin.data.builder` -- :func:`~medswin.data.builder.build_manifest` from a folder
  (nnU-Net / MSD, image/label pairs, BraTS case folders);
* :mod:`medswin.data.phantom` and :mod:`medswin.data.phantom_dataset` -- deterministic CT
  phantoms, alone or written as an nnU-Net folder.

The JSON schemas live in ``medswin/data/schemas/``.
"""
