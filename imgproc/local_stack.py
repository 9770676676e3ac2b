"""Deploy the real template into the embedded AWS, and apply what moto's CloudFormation ignores.

moto creates buckets without their ``NotificationConfiguration`` and skips ``AWS::SQS::QueuePolicy``
altogether. Those parts are re-read from the template itself, resolved against the deployed stack
and applied through the S3 and SQS APIs: the template stays the only place where they are defined.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgproc import deploy, package, template
from imgproc.boundary import UsageError
from toolkit import aws, queues

# The local runtime drives the handler itself (imgproc.poller) and has no CloudFront.
LOCAL_OVERRIDES = {"EnableCloudFront": "false", "EventSourceMappingEnabled": "false"}
_WHY_OVERRIDDEN = {
    "EnableCloudFront": "the embedded AWS cannot create a CloudFront distribution, and a stack whose "
    "outputs name one breaks describe-stacks",
    "EventSourceMappingEnabled": "nothing runs an event source mapping locally; `imgproc up`'s poller "
    "plays its part",
}


def source_zip() -> bytes:
    """The function's own packages as a zip: the embedded Lambda only stores it, nothing runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "function"
        staging.mkdir()
        package.copy_function_code(staging)
        return package.write_zip(staging, Path(tmp) / "function.zip").path.read_bytes()


def deploy_local(
    endpoint_url: str,
    *,
    region: str,
    stack_name: str,
    overrides: dict[str, str],
    progress: Callable[[str], None],
) -> dict[str, str]:
    """Deploy (or update) the stack into the embedded AWS at ``endpoint_url``; returns its outputs."""
    request = deploy.DeployRequest(
        stack_name=stack_name, region=region, endpoint_url=endpoint_url, overrides=overrides
    )
    return deploy_embedded(request, progress).outputs


def deploy_embedded(request: deploy.DeployRequest, progress: Callable[[str], None]) -> deploy.DeployResult:
    """Deploy ``request`` into the embedded AWS with the local adjustments (`imgproc up` and
    `imgproc deploy` against a local endpoint alike): :data:`LOCAL_OVERRIDES`, the function's own
    code as the zip unless one is given (nothing runs it there), a direct create or update, then the
    parts of the template moto ignores. :class:`UsageError` when ``-p`` asks for what cannot work
    locally."""
    refused = [
        f"-p {name}={request.overrides[name]} ({_WHY_OVERRIDDEN[name]})"
        for name, value in LOCAL_OVERRIDES.items()
        if request.overrides.get(name, value) != value
    ]
    if refused:
        raise UsageError(f"not possible on the embedded AWS: {'; '.join(refused)}")
    request = dataclasses.replace(
        request,
        overrides={**request.overrides, **LOCAL_OVERRIDES},
        zip_bytes=request.zip_bytes if request.zip_bytes is not None else source_zip(),
        method="direct",
    )
    result = deploy.deploy(request, progress)
    for line in apply_ignored_parts(request, template.load(request.template)):
        progress(f"  applied {line}")
    return result


def apply_ignored_parts(where: Any, tmpl: dict[str, Any]) -> list[str]:
    """Apply the bucket notifications and queue policies of ``tmpl`` to the deployed stack.

    Bucket policies stay unapplied: moto enforces them, and their TLS-only rule cannot hold on the
    plain-HTTP loopback endpoint.
    """
    s3, sqs, cfn = (aws.client(where, name) for name in ("s3", "sqs", "cloudformation"))
    resolver = stack_resolver(cfn, sqs, where.stack_name, tmpl, where.region)
    applied = []
    for logical_id, resource in tmpl["Resources"].items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::S3::Bucket" and "NotificationConfiguration" in properties:
            bucket = resolver.resolve({"Ref": logical_id})
            config = _notification_api_shape(resolver.resolve(properties["NotificationConfiguration"]))
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
            applied.append(f"{logical_id}.NotificationConfiguration")
        elif kind == "AWS::SQS::QueuePolicy":
            resolved = resolver.resolve(properties)
            for queue_url in resolved["Queues"]:
                sqs.set_queue_attributes(
                    QueueUrl=queue_url, Attributes={"Policy": json.dumps(resolved["PolicyDocument"])}
                )
            applied.append(logical_id)
    return applied


def stack_resolver(
    cfn: Any, sqs: Any, stack_name: str, tmpl: dict[str, Any], region: str
) -> template.Resolver:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    # moto lists the resource types it skipped without ids: they have nothing to resolve to.
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources if "LogicalResourceId" in r
    }
    account = stack["StackId"].split(":")[4]
    types = {logical: resource["Type"] for logical, resource in tmpl["Resources"].items()}

    def get_att(logical_id: str, attribute: str) -> str:
        kind = types[logical_id]
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            url = physical[logical_id]
            return queues.queue_arn(sqs, url)
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical[logical_id]}"
        raise NotImplementedError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not resolved locally")

    return template.Resolver(
        tmpl,
        parameters=parameters,
        physical_ids=physical,
        pseudo={
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::StackId": stack["StackId"],
            "AWS::URLSuffix": "amazonaws.com",
        },
        get_att=get_att,
    )


def _notification_api_shape(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration → PutBucketNotificationConfiguration's shape."""

    def filter_rules(entry: dict[str, Any]) -> dict[str, Any]:
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}

    return {
        "QueueConfigurations": [
            {"QueueArn": q["Queue"], "Events": [q["Event"]], **filter_rules(q)}
            for q in config.get("QueueConfigurations", [])
        ],
        "TopicConfigurations": [
            {"TopicArn": t["Topic"], "Events": [t["Event"]], **filter_rules(t)}
            for t in config.get("TopicConfigurations", [])
        ],
        "LambdaFunctionConfigurations": [
            {"LambdaFunctionArn": f["Function"], "Events": [f["Event"]], **filter_rules(f)}
            for f in config.get("LambdaConfigurations", [])
        ],
    }
