"""Training the scoring model, apart from serving: nothing under services/ imports this package.

``dataset`` is the length-delimited record format the simulator writes and the trainer reads;
``pki`` reads a dataset's simulated STI PKI; ``pointintime`` replays a dataset through
reputation's and origination's own code into point-in-time feature rows; ``train`` fits, calibrates
and evaluates the LightGBM forest; ``export`` flattens it into the artifact serving loads
(``services.scoring``); ``card`` writes the model card; ``synthetic`` is the placeholder training
set; ``python -m training`` is the CLI (``build-features``, ``train``, ``train-synthetic``, ``ship``).
"""
