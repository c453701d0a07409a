"""Inference models, by concern; nothing here imports storage, the renderer, the flows or training code.

- ``geometry/``: the pitch model, the pinhole camera and the camera prior (SoccerNet pitch frame, metres);
- ``calibration/``: marking segmentation, the dictionary of views, retrieval, refinement, the calibrator,
  the learned CCBV pieces and the calibration metric;
- ``detection/``: the DeepSportLab network, its decoder, the detector and the detection metrics;
- ``representations/``: localization on the pitch, top views, their feature vectors, the player graph;
- ``weights.py``: the registry of shipped weights with their checksums, loading and batch-norm folding;
- ``preprocessing.py``: how frames enter the ImageNet-initialised networks.

New model families follow the same pattern: a package per family here (``reid/``, ``tracking/``,
``ttnet/``: network, decoder, metric) and its training under ``matchflow/training/<family>/``.
"""
