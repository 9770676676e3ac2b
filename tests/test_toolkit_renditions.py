"""toolkit.renditions and toolkit.function.load_deployment: how `imgproc explain` and `imgproc dlq replay
--follow` read the deployed function's configuration and look at a key's renditions (in-process moto)."""

from __future__ import annotations

import boto3
import pytest
from conftest import DEST_BUCKET, REGION, Aws

from processor import markers
from processor.config import Config
from processor.renditions import plan_renditions
from toolkit.errors import StackNotFound
from toolkit.function import Deployment, FunctionConfigError, load_deployment
from toolkit.renditions import observe_renditions
from toolkit.stack import Output

KEY = "original/a b+é.gif"  # no web format: OUTPUT_FORMAT=auto gives each size two candidate keys


def put_rendition(aws: Aws, key: str, metadata: dict[str, str]) -> None:
    aws.s3.put_object(Bucket=DEST_BUCKET, Key=key, Body=b"x", Metadata=metadata)


def test_each_size_with_its_candidates_where_the_handler_writes_them(aws: Aws) -> None:
    config = Config(dest_bucket=DEST_BUCKET)
    plans = plan_renditions(config, KEY)
    large_png = plans[0].candidates[1]
    small_jpeg = plans[1].candidates[0]
    put_rendition(aws, large_png.key, markers.build(KEY, "etag-now", large_png.digest))
    put_rendition(aws, small_jpeg.key, markers.build(KEY, "etag-old", small_jpeg.digest))

    large, small = observe_renditions(aws.s3, DEST_BUCKET, config, KEY)

    assert (large.size, small.size) == ("300x300", "100x100")
    assert [c.key for c in large.candidates] == [c.key for c in plans[0].candidates]
    assert [c.digest for c in small.candidates] == [c.digest for c in plans[1].candidates]
    assert [c.metadata is not None for c in large.candidates + small.candidates] == [False, True, True, False]
    assert [c.key for c in large.current("etag-now")] == [large_png.key]
    assert small.current("etag-now") == []  # made from another ETag: stale
    assert [c.key for c in small.current('"etag-old"')] == [small_jpeg.key]  # an ETag as S3 quotes it


def test_a_rendition_whose_marker_names_another_source_key_is_claimed_not_current(aws: Aws) -> None:
    # `original/a b+é` (no extension, rendered as PNG) writes where `original/a b+é.png` does.
    config = Config(dest_bucket=DEST_BUCKET)
    bare, named = "original/a b+é", "original/a b+é.png"
    (shared,) = plan_renditions(config, named)[0].candidates
    put_rendition(aws, shared.key, markers.build(bare, "etag-now", shared.digest))  # quoted, as written

    large_named = next(observe_renditions(aws.s3, DEST_BUCKET, config, named))
    (seen,) = large_named.candidates
    assert (seen.source_key, seen.claimed_by) == (named, bare)
    assert large_named.current("etag-now") == []  # the same ETag, but another key's rendition
    large_bare = next(observe_renditions(aws.s3, DEST_BUCKET, config, bare))
    assert [c.key for c in large_bare.current("etag-now")] == [shared.key]
    assert [c.claimed_by for c in large_bare.candidates] == [None, None]


def test_the_heads_are_made_one_size_at_a_time(aws: Aws) -> None:
    looks = observe_renditions(aws.s3, DEST_BUCKET, Config(dest_bucket=DEST_BUCKET), KEY)
    assert aws.calls["s3.HeadObject"] == 0
    next(looks)
    assert aws.calls["s3.HeadObject"] == 2  # the two candidates of the first size, not the next one's


def set_environment(stack: dict[str, str], **changes: str) -> None:
    lam = boto3.client("lambda", region_name=REGION)
    env = lam.get_function_configuration(FunctionName=stack["FunctionName"])["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=stack["FunctionName"], Environment={"Variables": {**env, **changes}}
    )


def load(stack_name: str = "imgproc") -> Deployment:
    cfn = boto3.client("cloudformation", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)
    return load_deployment(cfn, lam, stack_name, (Output.SOURCE_BUCKET, Output.FUNCTION_NAME))


def test_the_deployment_is_the_stack_with_the_functions_parsed_configuration(
    deployed_stack: dict[str, str],
) -> None:
    set_environment(deployed_stack, SIZES="64x64")
    deployed = load()
    assert deployed.function.name == deployed_stack["FunctionName"]
    assert deployed.source_bucket == deployed_stack["SourceBucketName"]
    assert deployed.dest_bucket == deployed.config.dest_bucket == deployed_stack["DestinationBucketName"]
    assert [str(s) for s in deployed.config.sizes] == ["64x64"]


def test_a_function_configuration_that_does_not_parse_names_the_function(
    deployed_stack: dict[str, str],
) -> None:
    set_environment(deployed_stack, SIZES="abc")
    with pytest.raises(FunctionConfigError, match=f"^function {deployed_stack['FunctionName']}: .*SIZES"):
        load()


def test_a_missing_stack_is_said_before_any_function_is_read(deployed_stack: dict[str, str]) -> None:
    with pytest.raises(StackNotFound, match="stack 'nope' not found"):
        load("nope")
