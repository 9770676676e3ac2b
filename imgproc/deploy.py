"""`imgproc deploy`: package, upload the artifact, create or update the stack, print its outputs.

Against real AWS the stack changes through a change set (CloudFormation's reviewable diff). moto's
change sets do not record stack outputs, and every tool finds its resources through those outputs, so
against the embedded AWS (a loopback endpoint) the stack is created or updated directly, with the same
local adjustments as `imgproc up` (:func:`imgproc.local_stack.deploy_embedded`): no CloudFront, the
event source mapping disabled, the S3 notification and queue policy applied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgproc import package, template
from imgproc.boundary import UsageError
from toolkit import aws
from toolkit.errors import StackNotFound
from toolkit.stack import stack_outputs

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
_DONE_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class DeployError(RuntimeError):
    """The stack could not be brought to the requested state; the message says why."""


@dataclass
class DeployResult:
    stack_name: str
    action: str  # created, updated or unchanged
    outputs: dict[str, str] = field(default_factory=dict)


def parse_parameters(pairs: list[str], template_path: Path = template.MAIN_TEMPLATE) -> dict[str, str]:
    """``["Key=Value", …]`` → dict, checked against the template's parameters.

    Every command that deploys the template (deploy, up, demo) parses ``-p`` here, so a bad value is
    refused in one line before anything starts: :class:`UsageError` (exit 2) names the pair and the
    constraint it breaks.
    """
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {pair!r} is not KEY=VALUE")
        parameters[key] = value
    problems = template.parameter_problems(template.load(template_path), parameters)
    if problems:
        raise UsageError("; ".join(problems))
    return parameters


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the artifact bucket if it does not exist (private, encrypted)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def upload_content_addressed(s3: Any, bucket: str, prefix: str, data: bytes, suffix: str) -> str:
    """Upload ``data`` under a key derived from its hash (skipped when already there); returns the key.

    CloudFormation updates the function's code only when its S3 key changes, so the key must change
    exactly when the bytes do.
    """
    key = f"{prefix}{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return key


def stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def deploy_stack(
    cfn: Any,
    *,
    stack_name: str,
    template_url: str,
    parameters: Mapping[str, str],
    template_parameters: Collection[str],
    use_change_set: bool,
    progress: Callable[[str], None],
    poll_seconds: float = 5.0,
) -> DeployResult:
    """Create or update ``stack_name`` from ``template_url``; wait; return the outputs."""
    status = stack_status(cfn, stack_name)
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack_name} is in ROLLBACK_COMPLETE (its creation failed); delete it, then deploy again"
        )
    if status and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack_name} is busy ({status}); wait for it to finish")
    creating = status is None or status == "REVIEW_IN_PROGRESS"
    cfn_parameters = _parameters(cfn, stack_name, parameters, template_parameters, creating=creating)
    common = {"StackName": stack_name, "TemplateURL": template_url, "Parameters": cfn_parameters}
    started = time.time()

    if use_change_set:
        name = f"imgproc-{int(started)}"
        cfn.create_change_set(
            **common,
            ChangeSetName=name,
            ChangeSetType="CREATE" if creating else "UPDATE",
            Capabilities=CAPABILITIES,
        )
        progress(f"change set {name}: waiting for CloudFormation to compute it")
        change_set = _wait_change_set(cfn, stack_name, name, poll_seconds)
        if change_set["Status"] == "FAILED":
            reason = change_set.get("StatusReason", "")
            if any(marker in reason for marker in _NO_CHANGES):
                cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
                return DeployResult(stack_name, "unchanged", stack_outputs(cfn, stack_name))
            raise DeployError(f"change set {name} failed: {reason}")
        for change in change_set.get("Changes", []):
            rc = change.get("ResourceChange", {})
            progress(f"  {rc.get('Action', '?'):8} {rc.get('LogicalResourceId')} ({rc.get('ResourceType')})")
        cfn.execute_change_set(StackName=stack_name, ChangeSetName=name)
    else:
        try:
            if creating:
                cfn.create_stack(**common, Capabilities=CAPABILITIES)
            else:
                cfn.update_stack(**common, Capabilities=CAPABILITIES)
        except cfn.exceptions.ClientError as exc:
            if any(marker in str(exc) for marker in _NO_CHANGES):
                return DeployResult(stack_name, "unchanged", stack_outputs(cfn, stack_name))
            raise

    final = _wait_stack(cfn, stack_name, started, poll_seconds, progress)
    if final not in _DONE_OK:
        raise DeployError(f"stack {stack_name} ended in {final}; see the events above")
    return DeployResult(stack_name, "created" if creating else "updated", stack_outputs(cfn, stack_name))


def _parameters(
    cfn: Any, stack_name: str, overrides: Mapping[str, str], known: Collection[str], *, creating: bool
) -> list[dict[str, Any]]:
    """Given values, plus (on update) every other parameter the template still has, at its previous value.

    Previous values are passed explicitly rather than with ``UsePreviousValue``: the two are
    equivalent in CloudFormation, and moto fails ``UsePreviousValue`` for a parameter that was left at
    its default.
    """
    values = dict(overrides)
    if not creating:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        for previous in stack.get("Parameters", []):
            if previous["ParameterKey"] in known:
                values.setdefault(previous["ParameterKey"], previous["ParameterValue"])
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _wait_change_set(cfn: Any, stack_name: str, name: str, poll_seconds: float) -> dict[str, Any]:
    while True:
        change_set = cfn.describe_change_set(StackName=stack_name, ChangeSetName=name)
        if change_set["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return change_set
        time.sleep(poll_seconds)


def _wait_stack(
    cfn: Any, stack_name: str, since: float, poll_seconds: float, progress: Callable[[str], None]
) -> str:
    """Poll until the stack leaves *_IN_PROGRESS, reporting each new resource event as it comes."""
    seen: set[str] = set()
    while True:
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since - 1:
                continue
            seen.add(event["EventId"])
            reason = f" - {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            progress(f"  {event['ResourceStatus']:20} {event['LogicalResourceId']}{reason}")
        status = stack_status(cfn, stack_name) or "DELETED"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(poll_seconds)


def add_parameter_argument(parser: argparse.ArgumentParser) -> None:
    """``--parameter/-p KEY=VALUE``, shared by every command that deploys the template."""
    parser.add_argument(
        "--parameter",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter override (repeatable), e.g. -p Sizes=200x200,800x800",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    aws.add_arguments(parser)
    add_parameter_argument(parser)
    parser.add_argument(
        "--artifact-bucket",
        help="bucket for the zip and template (default: imgproc-artifacts-ACCOUNT-REGION)",
    )
    parser.add_argument("--arch", choices=sorted(package.ARCHITECTURES), default="arm64")
    parser.add_argument("--python-version", default="3.12", help="Lambda runtime's Python (default 3.12)")
    parser.add_argument("--zip", type=Path, help="deploy this zip instead of building one")
    parser.add_argument("--template", type=Path, default=template.MAIN_TEMPLATE, help="template to deploy")
    parser.add_argument(
        "--method",
        choices=["auto", "change-set", "direct"],
        default="auto",
        help="change-set (real AWS), direct (embedded AWS); auto picks by endpoint",
    )


@dataclass(frozen=True)
class DeployRequest:
    """Everything a deployment needs; built from the command line or by the local runtime."""

    stack_name: str
    region: str
    endpoint_url: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    zip_bytes: bytes | None = None  # None: build the package for arch / python_version
    arch: str = "arm64"
    python_version: str = "3.12"
    template: Path = template.MAIN_TEMPLATE
    method: str = "auto"  # auto, change-set or direct
    artifact_bucket: str | None = None


def run(args: argparse.Namespace) -> int:
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    overrides = parse_parameters(args.parameter, args.template)
    try:
        zip_bytes = args.zip.read_bytes() if args.zip else None
    except OSError as exc:
        raise UsageError(f"cannot read --zip {args.zip}: {exc.strerror or exc}") from None
    try:
        request = DeployRequest(
            stack_name=args.stack_name,
            region=args.region,
            endpoint_url=args.endpoint_url,
            overrides=overrides,
            zip_bytes=zip_bytes,
            arch=args.arch,
            python_version=args.python_version,
            template=args.template,
            method=args.method,
            artifact_bucket=args.artifact_bucket,
        )
        if aws.is_local_endpoint(request.endpoint_url):
            # Imported here: local_stack builds on this module (DeployRequest, deploy).
            from imgproc import local_stack  # noqa: PLC0415

            result = local_stack.deploy_embedded(request, progress)
        else:
            result = deploy(request, progress)
    except (OSError, ValueError, DeployError, package.PackagingError, StackNotFound) as exc:
        print(f"imgproc deploy: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"stack": result.stack_name, "action": result.action, "outputs": result.outputs}))
    else:
        print(f"stack {result.stack_name}: {result.action}")
        for key, value in sorted(result.outputs.items()):
            print(f"  {key:24} {value}")
    return 0


def deploy(request: DeployRequest, progress: Callable[[str], None]) -> DeployResult:
    """Package (unless a zip is given), upload, deploy, with ``progress`` lines on the way."""
    known = template.parameter_names(template.load(request.template))
    s3, cfn = aws.client(request, "s3"), aws.client(request, "cloudformation")
    bucket = request.artifact_bucket or (
        f"imgproc-artifacts-{aws.client(request, 'sts').get_caller_identity()['Account']}-{request.region}"
    )
    ensure_bucket(s3, bucket, request.region)
    zip_bytes = request.zip_bytes
    if zip_bytes is None:
        with tempfile.TemporaryDirectory() as tmp:
            progress(f"packaging the function for {request.arch}, Python {request.python_version}")
            artifact = package.build(
                Path(tmp) / "function.zip",
                platforms=package.ARCHITECTURES[request.arch],
                python_version=request.python_version,
            )
            zip_bytes = artifact.path.read_bytes()
            progress(f"  {artifact.size / 1_048_576:.1f} MiB, sha256 {artifact.sha256[:16]}")
            if not artifact.bytecode:
                progress(f"  {package.bytecode_note(request.python_version)}")
    code_key = upload_content_addressed(s3, bucket, "lambda/", zip_bytes, ".zip")
    template_key = upload_content_addressed(s3, bucket, "templates/", request.template.read_bytes(), ".yaml")
    progress(f"uploaded s3://{bucket}/{code_key} and s3://{bucket}/{template_key}")
    parameters = {
        "ArtifactBucket": bucket,
        "ArtifactKey": code_key,
        "Architecture": request.arch,
        "Runtime": f"python{request.python_version}",
        **request.overrides,
    }
    use_change_set = request.method == "change-set" or (
        request.method == "auto" and not aws.is_local_endpoint(request.endpoint_url)
    )
    # CloudFormation fetches the template itself, so this is S3's canonical URL whatever endpoint we
    # talk to (moto, too, resolves it to its own bucket).
    template_url = f"https://{bucket}.s3.{request.region}.amazonaws.com/{template_key}"
    return deploy_stack(
        cfn,
        stack_name=request.stack_name,
        template_url=template_url,
        parameters=parameters,
        template_parameters=known,
        use_change_set=use_change_set,
        progress=progress,
        poll_seconds=1.0 if not use_change_set else 5.0,
    )
