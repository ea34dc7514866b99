"""The scoring core: a LightGBM forest flattened into an artifact and scored by Numba kernels.

``model.Scorer`` is what the decision service loads; ``train`` (needs the ``train`` extra) builds
artifacts; ``kernels`` holds the compiled inference; ``python -m services.scoring`` trains.
"""
