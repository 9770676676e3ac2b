from __future__ import annotations

import botocore.exceptions
import pytest

from processor import errors


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("SlowDown", 503), errors.Throttled),
        (client_error("ThrottlingException", 400), errors.Throttled),
        (client_error("InternalError", 500), errors.ServiceError),
        (client_error("ServiceUnavailable", 503), errors.ServiceError),
        (client_error("PreconditionFailed", 412), errors.SourceChanged),
        (client_error("AccessDenied", 403), errors.UnexpectedError),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), errors.NetworkError),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), errors.NetworkError),
        (KeyError("boom"), errors.UnexpectedError),
    ],
)
def test_aws_and_unknown_errors_are_transient(exc: Exception, expected: type[errors.ProcessingError]) -> None:
    classified = errors.classify(exc)
    assert type(classified) is expected
    assert classified.transient


@pytest.mark.parametrize(
    "cls",
    [
        errors.NotAnImage,
        errors.CorruptImage,
        errors.ImageTooLarge,
        errors.UnsupportedImage,
        errors.InvalidEvent,
    ],
)
def test_input_errors_are_permanent_and_named(cls: type[errors.PermanentError]) -> None:
    error = cls("why")
    assert errors.classify(error) is error
    assert not error.transient
    assert error.error_class == cls.__name__


def test_imaging_module_has_no_aws_dependency() -> None:
    import subprocess
    import sys

    code = (
        "import sys, processor.imaging; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
