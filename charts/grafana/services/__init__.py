"""One module per service, each defining ``SECTION``; every module here is picked up automatically."""
