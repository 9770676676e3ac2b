"""Where AWS is, for every operator command: the --endpoint-url/--region/--stack-name/--json options
and the boto3 clients they describe (the stack's outputs: :mod:`toolkit.stack`)."""

from __future__ import annotations

import argparse
import ipaddress
import os
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config as BotoConfig

DEFAULT_STACK = "imgproc"
DEFAULT_REGION = "us-east-1"


def add_arguments(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """The options every command takes: --stack-name, --endpoint-url, --region (and --json)."""
    parser.add_argument(
        "--stack-name",
        default=os.environ.get("IMGPROC_STACK", DEFAULT_STACK),
        help="CloudFormation stack whose outputs name the resources (default: $IMGPROC_STACK or imgproc)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS endpoint, e.g. the embedded one printed by `imgproc up` (default: $AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


# The embedded AWS takes any credentials; a shell that only exported its endpoint has none.
LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def use_local_credentials() -> None:
    """Put :data:`LOCAL_CREDENTIALS` in this process's environment (inherited by its workers), unless
    credentials are already there."""
    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name.upper(), value)


# Retries ride out throttling and 5xx; a short connect timeout makes an endpoint that is down or
# unroutable fail in seconds (botocore waits 60 s per attempt by default) instead of minutes. The
# connection pool holds enough connections for the commands that call from a thread pool (backfill's
# parallel sends and HEADs; botocore keeps 10 by default and drops the rest after each call).
MAX_POOL_CONNECTIONS = 50
CLIENT_CONFIG = BotoConfig(
    connect_timeout=5,
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=MAX_POOL_CONNECTIONS,
)


def client(args: Any, service: str) -> Any:
    """A boto3 client for ``service`` at ``args.endpoint_url`` and ``args.region`` (parsed options or
    any object with those two attributes). Against the embedded AWS, placeholder credentials stand
    in when this shell has none."""
    extra: dict[str, str] = {}
    if is_local_endpoint(args.endpoint_url) and boto3.Session().get_credentials() is None:
        extra = LOCAL_CREDENTIALS
    return boto3.client(
        service,
        region_name=args.region,
        endpoint_url=args.endpoint_url or None,
        config=CLIENT_CONFIG,
        **extra,
    )


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """True for an endpoint on this machine (the embedded AWS), never for real AWS."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
