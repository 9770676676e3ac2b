"""The embedded AWS: moto's server on 127.0.0.1, in a thread of this process.

In-process rather than a child process: when `imgproc up` ends, however it ends, no server is left
behind. Its request log goes to a file, never to the user's terminal.

The socket is bound in the caller's thread (moto's ``ThreadedMotoServer`` binds inside its thread,
so a port in use there is a traceback in that thread and a caller waiting forever): a port in use is
:class:`PortInUse`, raised at once. Where moto's S3 differs from S3 in a way the pipeline would
notice, :func:`behave_like_s3` corrects it in this process (nothing on disk is patched).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from imgproc import signals

HOST = "127.0.0.1"
DEFAULT_PORT = 4566
_LOGGERS = ("werkzeug", "moto")


class PortInUse(OSError):
    """The embedded AWS cannot listen on the port asked for."""


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _listen(port: int) -> socket.socket:
    listener = socket.socket()
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
        listener.bind((HOST, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} is in use (another `imgproc up`?); choose another with --port, "
                "or --port 0 for any free one",
            ) from None
        raise
    return listener


_completing = threading.local()


def behave_like_s3() -> None:
    """One ``ObjectCreated:CompleteMultipartUpload`` event per multipart upload, as S3 sends.

    moto's ``complete_multipart_upload`` stores the object through ``put_object``, which sends an
    ``ObjectCreated:Put`` event of its own before the ``CompleteMultipartUpload`` one: every
    multipart upload (``aws s3 cp`` of anything over 8 MB) would be processed twice. While a
    multipart upload completes (in this thread), ``put_object`` is told not to notify. Idempotent.
    """
    from moto.s3.models import S3Backend  # noqa: PLC0415 - heavy, and only for the embedded AWS

    if getattr(S3Backend, "_imgproc_like_s3", False):
        return
    complete, put = S3Backend.complete_multipart_upload, S3Backend.put_object

    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        _completing.active = True
        try:
            return complete(self, *args, **kwargs)
        finally:
            _completing.active = False

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_completing, "active", False):
            kwargs["disable_notification"] = True
        return put(self, *args, **kwargs)

    S3Backend.complete_multipart_upload = complete_multipart_upload  # type: ignore[method-assign]
    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend._imgproc_like_s3 = True  # type: ignore[attr-defined]


class EmbeddedAws:
    """Start with :meth:`start` (returns the endpoint URL), stop with :meth:`stop`; or use ``with``.

    ``port`` 0 picks a free port.
    """

    def __init__(self, port: int = DEFAULT_PORT, log_file: Path | None = None) -> None:
        self._port = port
        self._log_file = log_file
        self._server: Any = None  # werkzeug's BaseWSGIServer running moto's app
        self._thread: threading.Thread | None = None
        self._handlers: list[logging.Handler] = []
        self.endpoint_url = ""

    def start(self) -> str:
        """Bind, then serve in a daemon thread; :class:`PortInUse` if the port is taken."""
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - heavy
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        behave_like_s3()
        self._route_logs()
        app = DomainDispatcherApplication(create_backend_app)
        listener = _listen(self._port)  # werkzeug would print its own message and sys.exit()
        try:
            self._server = make_server(
                HOST, self._port, app, True, request_handler=MotoRequestHandler, fd=listener.fileno()
            )
        finally:
            listener.close()  # the server holds its own duplicate of the socket
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        signals.start_helper_thread(self._thread)  # its request threads inherit: see imgproc.signals
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and close the socket (the port is free again when this returns)."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join()
            self._server.server_close()
            self._server, self._thread = None, None
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
