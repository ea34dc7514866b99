"""The labelled carrier-traffic simulator and the main job: a peer of the services, imported by none.

``scenario`` reads the scenario YAML; ``simulate`` (a package) builds actors and calls and writes a
dataset (format in ``training.dataset``); ``stipki`` is the simulated STI PKI that signs PASSporTs;
``replay`` publishes a dataset to Kafka and Decide; ``mesh`` starts the real services for a run;
``run`` is the main job (``python -m loadtest run``), ``jobs`` the generate and replay commands,
``model`` the model the mesh scores with; ``report`` (a package) turns a replayed dataset into
markdown and PNGs; ``audio`` renders captured calls' audio and ``audiorun`` reads its verdicts back;
``kafkaio`` and ``processes`` drive Kafka and service processes from outside (shared with the tests
and benchmarks); ``smoke`` is ``make smoke``. ``__main__`` only parses arguments.
"""
