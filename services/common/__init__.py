"""Shared by every service (and the trainer): imports no service.

Numbers and identity: ``phone`` (normalisation, number rules), ``emergency`` (every form of an
emergency call), ``identity`` (who a call is attributed to), ``pseudonym`` and ``keys`` (keyed HMAC
pseudonyms, every Redis key). Model inputs: ``features`` (the schema), ``context`` (call-context
features), ``featurestore`` (the one-round-trip reputation read), ``windows``, ``reasons`` (the reason
codes). Plumbing: ``settings``, ``codec`` (strict protobuf), ``topics``, ``kafka``, ``streams`` (faust
apps, dead letters, the stream service entry point), ``redisstore``, ``grpcserver``, ``breaker``,
``logs``, ``telemetry``, ``tracing``, ``progress`` (progress bars for command-line jobs).
"""
