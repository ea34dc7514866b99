"""The audio service: call audio → campaign, bot-behaviour and synthetic-voice verdicts.

``agents`` the faust app; ``segments`` checks an AudioSegment; ``analysis`` runs the detectors on one
segment; ``fingerprint`` and ``index`` the landmark fingerprints and their Redis index;
``campaigns`` matching and discovery; ``behaviour`` turn-taking; ``synthetic`` the synthetic-voice
detector (model in ``models/``); ``g711`` the codecs; ``seed`` the operators' CLI; ``settings``,
``metrics``.
"""
