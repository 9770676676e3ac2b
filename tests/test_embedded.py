"""The embedded AWS itself: a port in use is an error at once, and S3 events are S3's."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from imgproc import embedded

pytestmark = pytest.mark.e2e


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    with embedded.EmbeddedAws(port=0, log_file=tmp_path / "moto.log") as server:
        yield server.endpoint_url


def test_a_port_in_use_fails_at_once_and_leaves_it_to_its_owner() -> None:
    with socket.socket() as taken:
        taken.bind((embedded.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(embedded.PortInUse, match=f"^port {port} is in use"):
            embedded.EmbeddedAws(port=port).start()


def test_stop_frees_the_port(tmp_path: Path) -> None:
    server = embedded.EmbeddedAws(port=0, log_file=tmp_path / "moto.log")
    port = int(server.start().rsplit(":", 1)[1])
    assert not embedded.port_is_free(port)
    server.stop()
    assert embedded.port_is_free(port)


def test_a_multipart_upload_sends_one_event_as_s3_does(endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="src")
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="src",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=queue_url)  # the s3:TestEvent
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (11 * 1024 * 1024))
    five_mib = 5 * 1024 * 1024
    s3.upload_file(
        str(big),
        "src",
        "original/big.bin",
        Config=TransferConfig(multipart_threshold=five_mib, multipart_chunksize=five_mib),
    )
    s3.put_object(Bucket="src", Key="original/small.bin", Body=b"y")  # a single PUT still notifies

    events = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        for message in batch:
            events += [
                (r["eventName"], unquote_plus(r["s3"]["object"]["key"]))
                for r in json.loads(message["Body"])["Records"]
            ]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    assert sorted(events) == [
        ("ObjectCreated:CompleteMultipartUpload", "original/big.bin"),
        ("ObjectCreated:Put", "original/small.bin"),
    ]
