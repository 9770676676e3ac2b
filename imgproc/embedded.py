"""The embedded AWS: moto's server on 127.0.0.1, in a thread of this process.

In-process rather than a child process: when `imgproc up` ends, however it ends, no server is left
behind. Its request log goes to a file, never to the user's terminal.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DEFAULT_PORT = 4566
_LOGGERS = ("werkzeug", "moto")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


class EmbeddedAws:
    """Start with :meth:`start` (returns the endpoint URL), stop with :meth:`stop`; or use ``with``.

    ``port`` 0 picks a free port.
    """

    def __init__(self, port: int = DEFAULT_PORT, log_file: Path | None = None) -> None:
        self._port = port
        self._log_file = log_file
        self._server: Any = None  # moto.server.ThreadedMotoServer, imported on start (it is heavy)
        self._handlers: list[logging.Handler] = []
        self.endpoint_url = ""

    def start(self) -> str:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415

        self._route_logs()
        self._server = ThreadedMotoServer(ip_address=HOST, port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for name in _LOGGERS:
            for handler in self._handlers:
                logging.getLogger(name).removeHandler(handler)
        for handler in self._handlers:
            handler.close()
        self._handlers.clear()

    def _route_logs(self) -> None:
        """Request lines and moto's warnings to the log file (or nowhere), not to stderr."""
        handler: logging.Handler
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self._log_file)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        else:
            handler = logging.NullHandler()
        self._handlers.append(handler)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False

    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
