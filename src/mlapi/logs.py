"""Logging for every mlapi process: one line per record on stdout, where containers and
`mlapi run` collect it."""

from __future__ import annotations

import logging
import sys

from .config import Settings

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure(settings: Settings) -> None:
    logging.basicConfig(stream=sys.stdout, level=settings.log_level.upper(), format=FORMAT)
    # kafka-python logs every refused reconnect at ERROR; our own code reports outages once.
    # MLAPI_LOG_LEVEL=DEBUG shows its logs again, for SASL/TLS or network trouble.
    debug = settings.log_level.upper() == "DEBUG"
    logging.getLogger("kafka").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    # Alembic announces its SQL dialect on every start; migrations it runs still log at WARNING.
    logging.getLogger("alembic").setLevel(logging.DEBUG if debug else logging.WARNING)
