"""`imgproc deploy` against moto's CloudFormation: create, update, no-op, and clear failures."""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from imgproc import cli, deploy, embedded

# moto's CloudFormation skips the template's policies, alarms and CloudFront (infra/cloudformation/README.md).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


@pytest.fixture
def fake_zip(tmp_path: Path) -> Path:
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("processor/__init__.py", "")
    return path


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def run_deploy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    """Run `imgproc deploy --json`; returns the exit code, the parsed JSON and the progress lines."""
    code = cli.main(["deploy", "--json", "--region", "us-east-1", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


def test_create_then_update_directly(moto: None, fake_zip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, created, _ = run_deploy(
        capsys,
        "--zip",
        str(fake_zip),
        "--method",
        "direct",
        "-p",
        "EnableCloudFront=false",
        "-p",
        "BatchSize=5",
    )
    assert code == 0
    assert created["action"] == "created"
    outputs = created["outputs"]
    assert outputs["QueueUrl"].endswith("/imgproc-ingest")
    assert outputs["DeadLetterQueueUrl"].endswith("/imgproc-dlq")
    lam = boto3.client("lambda", region_name="us-east-1")
    (mapping,) = lam.list_event_source_mappings(FunctionName=outputs["FunctionName"])["EventSourceMappings"]
    assert mapping["BatchSize"] == 5
    artifact_bucket = "imgproc-artifacts-123456789012-us-east-1"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=artifact_bucket)["Contents"]]
    assert sorted(k.split("/")[0] for k in keys) == ["lambda", "templates"]

    code, updated, _ = run_deploy(capsys, "--zip", str(fake_zip), "--method", "direct", "-p", "Quality=70")
    assert code == 0
    assert updated["action"] == "updated"
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    params = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in cfn.describe_stacks(StackName="imgproc")["Stacks"][0]["Parameters"]
    }
    assert params["Quality"] == "70"
    assert params["BatchSize"] == "5"  # kept from the previous deployment
    assert params["EnableCloudFront"] == "false"


def test_create_through_a_change_set(moto: None, fake_zip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, progress = run_deploy(
        capsys, "--zip", str(fake_zip), "--method", "change-set", "-p", "EnableCloudFront=false"
    )
    assert code == 0
    assert result["action"] == "created"
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    assert cfn.describe_stacks(StackName="imgproc")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert "change set imgproc-" in progress


def test_a_stack_still_in_progress_is_left_alone(moto: None) -> None:
    # moto leaves a stack whose Lambda code cannot be found in CREATE_IN_PROGRESS: a stand-in for a
    # deployment that another operator started and that has not finished.
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stuck = {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "a.b",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"S3Bucket": "no-such-bucket", "S3Key": "k"},
                },
            },
        }
    }
    with contextlib.suppress(Exception):
        cfn.create_stack(StackName="imgproc", TemplateBody=json.dumps(stuck))
    assert deploy.stack_status(cfn, "imgproc") == "CREATE_IN_PROGRESS"

    with pytest.raises(deploy.DeployError, match="busy"):
        deploy.deploy_stack(
            cfn,
            stack_name="imgproc",
            template_url="https://example.invalid/t.yaml",
            parameters={},
            template_parameters=(),
            use_change_set=True,
            progress=print,
        )


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("Colour=blue", "unknown parameter(s) Colour; the template has "),
        ("Sizes=abc", "Sizes='abc' does not match ^[1-9]"),
        ("Fit=stretch", "Fit='stretch' is not one of contain, cover"),
        ("Quality=0", "Quality='0' is below the minimum 1"),
        ("Quality=high", "Quality='high' is not a number"),
        ("MemorySize=20000", "MemorySize='20000' is above the maximum 10240"),
        ("Timeout=7", "Timeout='7' is not one of 10, 15,"),
        ("Quality", "-p 'Quality' is not KEY=VALUE"),
        ("=5", "-p '=5' is not KEY=VALUE"),
    ],
)
def test_parameters_are_checked_against_the_template_before_any_work(
    pair: str, message: str, fake_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No moto here: had it got as far as AWS, the call would fail on the fake credentials instead.
    assert cli.main(["deploy", "--zip", str(fake_zip), "-p", pair]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"imgproc deploy: {message}")
    assert err.count("\n") == 1


def test_a_valid_value_passes_and_the_parsing_is_shared_with_up_and_demo() -> None:
    assert deploy.parse_parameters(["Sizes=64x64,2000x1000", "Quality=90", "Fit=cover"]) == {
        "Sizes": "64x64,2000x1000",
        "Quality": "90",
        "Fit": "cover",
    }
    for command in ("up", "demo"):
        assert cli.main([command, "-p", "Sizes=abc"]) == 2  # refused before anything starts


@pytest.fixture(scope="module")
def embedded_aws() -> Iterator[str]:
    with embedded.EmbeddedAws(port=0) as server:
        yield server.endpoint_url


def test_deploy_to_the_embedded_aws_applies_the_local_adjustments(
    embedded_aws: str, fake_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--endpoint-url", embedded_aws, "--stack-name", "local-deploy"]
    # No -p EnableCloudFront=false: against the embedded AWS, deploy sets it as `imgproc up` does.
    code, created, progress = run_deploy(capsys, *where, "--zip", str(fake_zip))
    assert code == 0, progress
    outputs = created["outputs"]
    assert "applied SourceBucket.NotificationConfiguration" in progress
    assert "DistributionDomainName" not in outputs or not outputs["DistributionDomainName"]

    cfn = boto3.client("cloudformation", endpoint_url=embedded_aws, region_name="us-east-1")
    (stack,) = cfn.describe_stacks(StackName="local-deploy")["Stacks"]  # readable: no broken output
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["EnableCloudFront"] == "false"
    assert parameters["EventSourceMappingEnabled"] == "false"
    s3 = boto3.client("s3", endpoint_url=embedded_aws, region_name="us-east-1")
    notification = s3.get_bucket_notification_configuration(Bucket=outputs["SourceBucketName"])
    assert [q["QueueArn"] for q in notification["QueueConfigurations"]] == [outputs["QueueArn"]] * len(
        notification["QueueConfigurations"]
    )
    assert notification["QueueConfigurations"]
    assert cli.main(["status", *where]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("pair", ["EnableCloudFront=true", "EventSourceMappingEnabled=true"])
def test_deploy_to_the_embedded_aws_refuses_what_cannot_work_there(
    pair: str, embedded_aws: str, fake_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--endpoint-url", embedded_aws, "--stack-name", "local-refused"]
    code, _, err = run_deploy(capsys, *where, "--zip", str(fake_zip), "-p", pair)
    assert code == 2
    assert err.startswith(f"imgproc deploy: not possible on the embedded AWS: -p {pair} (")
    assert err.count("\n") == 1
    cfn = boto3.client("cloudformation", endpoint_url=embedded_aws, region_name="us-east-1")
    assert "local-refused" not in [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]


def test_local_endpoints_are_recognised() -> None:
    from toolkit.aws import is_local_endpoint

    assert is_local_endpoint("http://127.0.0.1:4566")
    assert is_local_endpoint("http://localhost:5000")
    assert not is_local_endpoint("https://cloudformation.us-east-1.amazonaws.com")
    assert not is_local_endpoint(None)


def test_the_embedded_aws_needs_no_credentials_from_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from argparse import Namespace

    from toolkit.aws import client

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    local = client(Namespace(endpoint_url="http://127.0.0.1:4566", region="us-east-1"), "sqs")
    assert local._request_signer._credentials.access_key == "test"
    real = client(Namespace(endpoint_url=None, region="us-east-1"), "sqs")
    invented = real._request_signer._credentials
    assert invented is None or invented.access_key != "test"  # real AWS: never invent credentials
