"""Every failure the processor can meet, split by what SQS should do with the message.

A *transient* error means "try again later": the record is reported in ``batchItemFailures`` and SQS
redelivers it until ``maxReceiveCount``, then redrives it to the DLQ.  A *permanent* error means the
input itself is bad and retrying cannot help: the message goes to the DLQ at once, with its class.

This module is pure (no boto3/botocore import) so that the imaging core can raise these classes
without pulling in the AWS SDK; AWS exceptions are recognised by duck typing in :func:`classify`.
"""

from __future__ import annotations

from typing import ClassVar


class ProcessingError(Exception):
    """Base class: carries whether a retry can help, and a stable name for logs and metrics."""

    transient: ClassVar[bool] = True

    @property
    def error_class(self) -> str:
        return type(self).__name__


class TransientError(ProcessingError):
    """Retrying later can succeed: throttling, 5xx, network trouble, a source changed mid-read."""

    transient = True


class Throttled(TransientError):
    """AWS asked us to slow down (SlowDown, Throttling, 429/503)."""


class ServiceError(TransientError):
    """AWS answered with a server-side error (5xx) or a request timeout."""


class NetworkError(TransientError):
    """The request never got an answer: connection refused or reset, read or connect timeout."""


class SourceChanged(TransientError):
    """The source object changed while we worked on it (the pinned GET's ETag no longer matches)."""


class DeadlineExceeded(TransientError):
    """The Lambda invocation was too close to its timeout to start this record."""


class SideEffectFailed(TransientError):
    """The renditions are written and current, but recording or announcing them failed.

    Retried like any transient error; the retry finds the renditions current (HEADs only, no second
    render) and completes just what is missing (see :mod:`processor.followups`).
    """


class CatalogFailed(SideEffectFailed):
    """The DynamoDB catalog (``CATALOG_TABLE``) could not be read or written."""


class NotificationFailed(SideEffectFailed):
    """The SNS notification (``NOTIFY_TOPIC_ARN``) could not be published."""


class UnexpectedError(TransientError):
    """Anything we did not anticipate: retried (SQS redrives it eventually) and logged with traceback."""


class PermanentError(ProcessingError):
    """The input is bad; the message is dead-lettered at once with this class as ``error-class``."""

    transient = False


class InvalidEvent(PermanentError):
    """The SQS message body is not an S3 notification we understand."""


class NotAnImage(PermanentError):
    """The object is not in any image format we can identify (text, HTML, PDF, random bytes, empty)."""


class CorruptImage(PermanentError):
    """The object claims an image format but cannot be decoded (truncated, broken data stream)."""


class ImageTooLarge(PermanentError):
    """The object exceeds ``MAX_SOURCE_BYTES`` or its header declares more than ``MAX_PIXELS``."""


class UnsupportedImage(PermanentError):
    """A recognised image we cannot render faithfully (an unusual pixel mode, say)."""


# S3 and SQS error codes that mean "slow down"; botocore's own retries gave up before we see them.
_THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
    }
)
_SERVICE_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException"}
)


def classify(exc: BaseException) -> ProcessingError:
    """Map any exception to one of our classes, keeping ours as they are.

    Unknown exceptions become :class:`UnexpectedError` (transient): a bug or an outage we did not
    foresee must never silently drop a message, and SQS's redrive bounds the retries.
    """
    if isinstance(exc, ProcessingError):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:  # botocore ClientError
        return _classify_client_error(exc, response)
    if _is_network_error(exc):
        return NetworkError(f"{type(exc).__name__}: {exc}")
    return UnexpectedError(f"{type(exc).__name__}: {exc}")


def _classify_client_error(exc: BaseException, response: dict) -> TransientError:
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _THROTTLING_CODES or status == 429:
        return Throttled(str(exc))
    if code in ("PreconditionFailed", "412") or status == 412:
        return SourceChanged(str(exc))
    if code in _SERVICE_CODES or status >= 500:
        return ServiceError(str(exc))
    return UnexpectedError(f"{type(exc).__name__}: {exc}")


def _is_network_error(exc: BaseException) -> bool:
    """botocore's connection and timeout errors, recognised by their class names (no import)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "EndpointConnectionError",
            "ConnectionClosedError",
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "HTTPClientError",
            "ConnectionError",
            "TimeoutError",
        }
    )
