"""The hostile-file corpus through the real Lambda entry point: every input ends rendered or dead-lettered.

Each case uploads one generated file to in-process moto and runs ``processor.handler.lambda_handler``
on its S3 notification, configured from the environment as in Lambda (``DEST_BUCKET``, ``DLQ_URL``).
The expected result is exact: the rendition keys with their dimensions, or one DLQ entry whose
``error-class`` attribute names the class. Whatever the input, the batch never raises, never reports
the message for a retry (``batchItemFailures`` stays empty: a hostile file is not a transient problem),
and finishes well within a hang guard.

What the imaging core does with each kind of input in detail (pixels, colours, orientation, which
truncation offsets, Pillow's warnings) is tested in ``tests/test_imaging.py``; this file checks the
same inputs end to end through the handler, the S3 round trips and the DLQ, which those tests do not.

Per-record memory is bounded by two limits, both checked before any pixel is decoded:
``MAX_SOURCE_BYTES`` (from the source's HEAD, before the GET) and ``MAX_PIXELS`` (from the image
header). Both are tested here through the handler, plus a measured peak-RSS bound for the largest
image ``MAX_PIXELS`` lets through.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import imagegen
import pytest
from conftest import DEST_BUCKET, Aws, s3_body, s3_record, sqs_event, sqs_record
from PIL import Image, ImageFile

from processor import handler

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_SECONDS = 10.0  # generous: every case takes well under a second; this catches hangs only

JPEG = imagegen.photo_jpeg(160, 120)
PNG = imagegen.encode(Image.new("RGB", (160, 120), (40, 120, 200)), "PNG")
CORNERS = imagegen.encode(imagegen.corner_markers(120, 80), "JPEG", quality=95)
CORRUPT_EXIF = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03"  # IFD cut short

Expected = dict[str, tuple[int, int]] | str  # rendition key -> (width, height), or the DLQ error class


def _renditions(name: str, big: tuple[int, int], small: tuple[int, int]) -> dict[str, tuple[int, int]]:
    return {f"resized/300x300/{name}": big, f"resized/100x100/{name}": small}


# (key under original/, bytes, expected). Names keep the extension a user would give the file, except
# the non-images named .jpg on purpose.
CASES: dict[str, tuple[str, Callable[[], bytes], Expected]] = {
    # Truncated at several offsets: inside the SOI/header, inside the scan, just before EOI.
    "jpeg-cut-3": ("cut3.jpg", lambda: JPEG[:3], "CorruptImage"),  # the SOI says JPEG
    "jpeg-cut-200": ("cut200.jpg", lambda: JPEG[:200], "CorruptImage"),
    "jpeg-cut-half": ("cuthalf.jpg", lambda: JPEG[: len(JPEG) // 2], "CorruptImage"),
    "jpeg-cut-end": ("cutend.jpg", lambda: JPEG[:-2], "CorruptImage"),
    "png-cut-8": ("cut8.png", lambda: PNG[:8], "CorruptImage"),
    "png-cut-40": ("cut40.png", lambda: PNG[:40], "CorruptImage"),
    "png-cut-half": ("cuthalf.png", lambda: PNG[: len(PNG) // 2], "CorruptImage"),
    "png-cut-end": ("cutend.png", lambda: PNG[:-12], "CorruptImage"),  # IEND missing
    "zero-bytes": ("empty.jpg", lambda: b"", "NotAnImage"),
    "random-bytes": ("random.jpg", lambda: imagegen.random_bytes(4096, seed=7), "NotAnImage"),
    "html-as-jpg": ("page.jpg", lambda: imagegen.HTML, "NotAnImage"),
    "text-as-jpg": ("notes.jpg", lambda: imagegen.TEXT, "NotAnImage"),
    "pdf-as-jpg": ("doc.jpg", lambda: imagegen.PDF, "NotAnImage"),
    "png-bomb": ("bomb.png", lambda: imagegen.png_bomb(100_000, 100_000), "ImageTooLarge"),
    "gif-bomb": (
        "bomb.gif",
        lambda: imagegen.gif_with_oversized_frame((10, 10), (20_000, 20_000)),
        "ImageTooLarge",
    ),
    "1x1": ("dot.png", lambda: imagegen.encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), None),
    "1x10000-strip": (
        "strip.png",
        lambda: imagegen.encode(Image.new("RGB", (1, 10_000), (200, 30, 30)), "PNG"),
        None,
    ),
    "gray16-tiff": ("gray16.tif", lambda: imagegen.gray16(64, 48, 40_000), None),
    "float-tiff": ("float.tif", lambda: imagegen.float_tiff(64, 48), None),
    "cmyk-adobe-jpeg": ("cmyk.jpg", lambda: imagegen.cmyk_jpeg(64, 48, (0, 255, 255, 0)), None),
    "palette-trns-png": ("palette.png", lambda: imagegen.palette_png(64, 48), None),
    "animated-gif": (
        "anim.gif",
        lambda: imagegen.animated(40, 30, [imagegen.RED, imagegen.BLUE, imagegen.GREEN], "GIF"),
        None,
    ),
    "animated-webp": (
        "anim.webp",
        lambda: imagegen.animated(40, 30, [imagegen.RED, imagegen.BLUE, imagegen.GREEN], "WEBP"),
        None,
    ),
    "corrupt-exif-jpeg": ("badexif.jpg", lambda: imagegen.with_exif(CORNERS, CORRUPT_EXIF), None),
    "orientation-9": ("orient9.jpg", lambda: imagegen.with_exif_orientation(CORNERS, 9), None),
    "orientation-65535": ("orient65535.jpg", lambda: imagegen.with_exif_orientation(CORNERS, 65535), None),
    "invalid-icc": (
        "badicc.png",
        lambda: imagegen.encode(imagegen.corner_markers(120, 80), "PNG", icc_profile=b"not a profile" * 10),
        None,
    ),
}

# The renditions of the cases that render, as the contain fit computes them (never upscaled).
RENDERED: dict[str, dict[str, tuple[int, int]]] = {
    "1x1": _renditions("dot.png", (1, 1), (1, 1)),
    "1x10000-strip": _renditions("strip.png", (1, 300), (1, 100)),
    "gray16-tiff": _renditions("gray16.tif.jpg", (64, 48), (64, 48)),
    "float-tiff": _renditions("float.tif.jpg", (64, 48), (64, 48)),
    "cmyk-adobe-jpeg": _renditions("cmyk.jpg", (64, 48), (64, 48)),
    "palette-trns-png": _renditions("palette.png", (64, 48), (64, 48)),
    "animated-gif": _renditions("anim.gif.jpg", (40, 30), (40, 30)),
    "animated-webp": _renditions("anim.webp", (40, 30), (40, 30)),
    "corrupt-exif-jpeg": _renditions("badexif.jpg", (120, 80), (100, 67)),
    "orientation-9": _renditions("orient9.jpg", (120, 80), (100, 67)),
    "orientation-65535": _renditions("orient65535.jpg", (120, 80), (100, 67)),
    "invalid-icc": _renditions("badicc.png", (120, 80), (100, 67)),
}


class _Context:
    aws_request_id = "req-hostile"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_env(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The handler configured from the environment, as in Lambda; its per-container cache reset."""
    monkeypatch.setenv("DEST_BUCKET", DEST_BUCKET)
    monkeypatch.setenv("DLQ_URL", aws.dlq_url)
    handler.runtime.cache_clear()
    yield monkeypatch
    handler.runtime.cache_clear()


def invoke(*keys: str) -> tuple[dict, float]:
    """Run the handler on one message per key; return its response and how long it took."""
    records = [sqs_record(s3_body(s3_record(key)), message_id=f"m-{key}") for key in keys]
    started = time.perf_counter()
    response = handler.lambda_handler(sqs_event(*records), _Context())
    return response, time.perf_counter() - started


def dlq_classes(aws: Aws) -> dict[str, str]:
    """Original message id -> error-class of every DLQ entry."""
    return {
        m["MessageAttributes"]["original-message-id"]["StringValue"]: m["MessageAttributes"]["error-class"][
            "StringValue"
        ]
        for m in aws.dlq_messages()
    }


def dest_sizes(aws: Aws) -> dict[str, tuple[int, int]]:
    return {key: Image.open(io.BytesIO(aws.dest_object(key)["Body"].read())).size for key in aws.dest_keys()}


@pytest.mark.parametrize("case", list(CASES))
def test_every_hostile_input_is_rendered_or_dead_lettered_with_its_class(
    aws: Aws, lambda_env: pytest.MonkeyPatch, case: str
) -> None:
    name, make, error_class = CASES[case]
    key = f"original/{name}"
    etag = aws.put_source(key, make())

    response, elapsed = invoke(key)

    assert response == {"batchItemFailures": []}  # neither a batch crash nor a pointless retry
    assert elapsed < HANG_GUARD_SECONDS
    if error_class is not None:
        assert dlq_classes(aws) == {f"m-{key}": error_class}
        assert aws.dest_keys() == []
        return
    assert dlq_classes(aws) == {}
    assert dest_sizes(aws) == RENDERED[case]
    for rendition in RENDERED[case]:
        metadata = aws.s3.head_object(Bucket=DEST_BUCKET, Key=rendition)["Metadata"]
        assert metadata["source-etag"] == etag


def test_the_whole_corpus_in_one_batch_settles_every_message(
    aws: Aws, lambda_env: pytest.MonkeyPatch
) -> None:
    """All the hostile files in one batch (records in parallel): one bad record never takes down
    the others, and each message ends rendered or dead-lettered with its own class."""
    keys = []
    for name, make, _ in CASES.values():
        keys.append(f"original/{name}")
        aws.put_source(keys[-1], make())

    response, elapsed = invoke(*keys)

    assert response == {"batchItemFailures": []}
    assert elapsed < 3 * HANG_GUARD_SECONDS
    assert dlq_classes(aws) == {
        f"m-original/{name}": error for name, _, error in CASES.values() if error is not None
    }
    assert set(aws.dest_keys()) == {key for expected in RENDERED.values() for key in expected}


# ---------------------------------------------------------------------------------------------------
# The per-record limits that bound memory


def _forbid_pixel_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, tuple[int, int]]]:
    """Record every real decode (ImageFile.load with tiles to read): the size checks must come first."""
    loads: list[tuple[str | None, tuple[int, int]]] = []
    original = ImageFile.ImageFile.load

    def load(im: ImageFile.ImageFile) -> object:
        if im.tile:
            loads.append((im.format, im.size))
        return original(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loads


def test_a_bomb_declaring_one_pixel_over_max_pixels_is_too_large_without_decoding(
    aws: Aws, lambda_env: pytest.MonkeyPatch
) -> None:
    lambda_env.setenv("MAX_PIXELS", str(24_000_000))
    handler.runtime.cache_clear()
    aws.put_source("original/over.png", imagegen.png_bomb(24_000_001, 1))
    aws.put_source("original/at.png", imagegen.png_bomb(6_000, 4_000))  # exactly the limit: allowed
    loads = _forbid_pixel_loads(lambda_env)

    response, elapsed = invoke("original/over.png")

    assert response == {"batchItemFailures": []}
    assert elapsed < HANG_GUARD_SECONDS
    assert loads == []  # rejected from the header: not one pixel decoded
    assert dlq_classes(aws) == {"m-original/over.png": "ImageTooLarge"}

    # The same header within the limit is decoded (and fails as corrupt: the bomb has no pixel data).
    invoke("original/at.png")
    assert loads == [("PNG", (6_000, 4_000))]
    assert dlq_classes(aws) == {"m-original/at.png": "CorruptImage"}


def test_a_source_over_max_source_bytes_is_too_large_without_being_downloaded(
    aws: Aws, lambda_env: pytest.MonkeyPatch
) -> None:
    lambda_env.setenv("MAX_SOURCE_BYTES", str(len(JPEG) - 1))
    handler.runtime.cache_clear()
    aws.put_source("original/big.jpg", JPEG)
    aws.calls.clear()
    gets: list[str] = []
    handler.runtime().s3.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: gets.append(params["Key"])
    )

    response, _ = invoke("original/big.jpg")

    assert response == {"batchItemFailures": []}
    assert gets == []
    assert dlq_classes(aws) == {"m-original/big.jpg": "ImageTooLarge"}
    assert aws.dest_keys() == []


# A child process, so that its peak RSS is this run's alone: in-process moto with the source uploaded,
# then the peak before and after one handler invocation on it.
_RSS_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys
    sys.path[:0] = [os.environ["IMGPROC_ROOT"], os.path.join(os.environ["IMGPROC_ROOT"], "tests")]
    import boto3
    from moto import mock_aws
    from conftest import s3_body, s3_record, sqs_event, sqs_record
    from processor import handler

    class Context:
        aws_request_id = "rss"
        def get_remaining_time_in_millis(self):
            return 60_000

    def status_mb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    def reset_peak():
        # Linux: writing 5 to clear_refs resets VmHWM (the peak) to the current RSS.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3.create_bucket(Bucket="src")
        s3.create_bucket(Bucket="dst")
        os.environ["DLQ_URL"] = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        with open(sys.argv[1], "rb") as f:
            s3.put_object(Bucket="src", Key="original/big.png", Body=f.read())
        handler.runtime()  # cold start (clients, config) belongs to the baseline
        reset_peak()
        before = status_mb("VmRSS")
        response = {}
        if sys.argv[2] == "render":
            event = sqs_event(sqs_record(s3_body(s3_record("original/big.png", bucket="src"))))
            response = handler.lambda_handler(event, Context())
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dst").get("Contents", [])]
        after = status_mb("VmHWM")
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        out = {"before": before, "after": after, "maxrss": maxrss, "response": response, "keys": keys}
        print(json.dumps(out))
    """
)


def _peak_rss(source: Path, mode: str) -> dict:
    env = {
        **os.environ,
        "IMGPROC_ROOT": str(ROOT),
        "DEST_BUCKET": "dst",
        "MAX_PIXELS": str(24_000_000),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(source), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_of_a_record_just_under_max_pixels_is_bounded(tmp_path: Path) -> None:
    """Rendering the largest image MAX_PIXELS admits stays within a fixed memory bound.

    MAX_PIXELS=24 MP, source a 5,990 x 4,000 RGB PNG (23.96 MP; PNG because it is decoded at full
    size, unlike a JPEG, which libjpeg decodes at 1/8 scale here). Measured in a child process: its
    peak (VmHWM) is reset to the current RSS just before the invocation (``/proc/self/clear_refs``),
    and the growth is the peak after it minus the RSS before it. A baseline child does everything but
    the invocation. Measured here: about +95 MB.

    The bound: the decoded pixels are 96 MB (Pillow keeps RGB in 4 bytes a pixel); the pipeline holds
    the decoded image, at most one converted or reduced copy of the same order, the small renditions,
    the encoded source (a few MB) and allocator slack: at most about 3 x 96 MB. 400 MB is that with
    headroom; with the template's default 1,769 MB Lambda and CONCURRENCY=4 records of that size in
    flight at once it still fits. Without the MAX_PIXELS check the growth would scale with whatever a
    header declares (a 100k x 100k bomb: 40 GB).
    """
    image = Image.linear_gradient("L").resize((5_990, 4_000)).convert("RGB")
    source = tmp_path / "big.png"
    image.save(source, "PNG", compress_level=1)
    del image

    baseline = _peak_rss(source, "baseline")
    rendered = _peak_rss(source, "render")

    assert rendered["response"] == {"batchItemFailures": []}
    assert rendered["keys"] == ["resized/100x100/big.png", "resized/300x300/big.png"]
    growth = rendered["after"] - rendered["before"]
    print(
        f"peak RSS: baseline process {baseline['after']:.0f} MB, before render {rendered['before']:.0f} MB, "
        f"after {rendered['after']:.0f} MB: +{growth:.0f} MB for 23.96 MP"
    )
    assert baseline["after"] - baseline["before"] < 20  # the baseline does nothing after the mark
    assert 72 <= growth < 400  # decoded at full size (a real decode was measured), and bounded
