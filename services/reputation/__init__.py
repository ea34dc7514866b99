"""The reputation service: fold setups, CDRs, complaints, audio verdicts and subscriber presence into
per-number state.

``agents`` the faust app and its batching agents; ``folding`` turns a decoded record into an update
(shared with the trainer); ``numbers`` the idempotent Lua folds in Redis; ``settings``, ``metrics``.
Decision reads the state with ``services.common.featurestore``.
"""
