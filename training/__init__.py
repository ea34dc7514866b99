"""Training the scoring model, apart from serving: nothing under services/ imports this package.

``dataset`` is the length-delimited record format the simulator writes and the trainer reads;
``pki`` reads a dataset's simulated STI PKI; ``pointintime`` replays a dataset through
reputation's and origination's own code into point-in-time feature rows; ``train`` fits, calibrates
and evaluates the LightGBM forest; ``evaluation`` makes every choice on the validation slice and
measures it on the holdout with confidence intervals; ``export`` flattens the forest into the
artifact serving loads (``services.scoring``); ``card`` writes the model card and ``plots`` its
figures; ``audioverdicts`` synthesises the audio service's verdicts from segment metadata;
``degrade`` copies training rows as serving sees degraded calls; ``evaluate`` scores another
dataset with a trained model and the decision policy; ``synthetic`` is the placeholder training
set; ``python -m training`` is the CLI (``build-features``, ``train``, ``train-synthetic``,
``ship``, ``evaluate``).
"""
