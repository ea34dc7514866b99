"""The scoring core as Decide loads it: the model artifact and its compiled Numba inference.

``artifact`` reads and verifies a model folder; ``kernels`` holds the compiled tree walks,
calibration and path attributions; ``model.Scorer`` is what the decision service loads. Training
and the export from LightGBM live apart, in ``training/`` (``python -m training``).
"""
