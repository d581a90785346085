"""Challenge submission pipelines, each a thin layer over :mod:`medswin.batch` and the Predictor.

* :mod:`medswin.challenges.brats` -- BraTS 2023/2024 inputs, label conventions, zip, validator;
* :mod:`medswin.challenges.msd` -- Medical Segmentation Decathlon task folders (Decathlon and nnU-Net);
* :mod:`medswin.challenges.grand_challenge` -- the algorithm container's ``/input`` -> ``/output`` job;
* :mod:`medswin.challenges.validation` -- problem reports shared by the validators.
"""
