"""Run origination: ``serve`` (gRPC Verify, the default) or ``stats`` (the attestation statistics agent)."""

from __future__ import annotations

import argparse
import sys

from services.common import eventloop
from services.common.redisstore import make_async_redis
from services.common.settings import SettingsError, load
from services.common.streams import run_worker
from services.common.telemetry import setup_telemetry
from services.origination.service import ConfigurationError, build, prewarm_files, serve
from services.origination.settings import OriginationSettings
from services.origination.stats import AttestationStore, Observer, build_stats_app


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m services.origination [serve|stats]``."""
    parser = argparse.ArgumentParser(prog="python -m services.origination", description=__doc__)
    parser.add_argument("role", nargs="?", choices=("serve", "stats"), default="serve")
    args = parser.parse_args(argv)
    try:
        settings = load(OriginationSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    telemetry = setup_telemetry(settings)
    try:
        core = build(settings)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        telemetry.shutdown()
        return 2
    try:
        if args.role == "serve":
            eventloop.run(serve(settings))
        else:
            prewarm_files(core)  # provisioned PEMs now; shared and fetched chains on first miss
            store = AttestationStore(
                make_async_redis(settings),
                marker_ttl_s=settings.dedupe_ttl_s,
                stats_ttl_s=settings.stats_ttl_s,
            )
            run_worker(
                build_stats_app(settings, Observer(settings, core.verifier, core.rules), store, core.cache),
                settings,
            )
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
