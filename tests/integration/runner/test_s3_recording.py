"""Recordings to an S3-compatible bucket, against a local moto S3 server on 127.0.0.1."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

boto3 = pytest.importorskip("boto3", reason="needs the s3 extra")
moto_server = pytest.importorskip("moto.server", reason="needs moto[server]")

from callpipe.runner.records import RecordsConfig, RecordStore  # noqa: E402
from callpipe.runner.s3_storage import S3Storage  # noqa: E402
from callpipe.testing.virtual_calls import virtual_time  # noqa: E402
from callpipe.transports.recording import CallRecording  # noqa: E402

pytestmark = pytest.mark.integration

BUCKET = "call-recordings"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _tone(secs: float) -> bytes:
    t = np.arange(int(secs * 8000)) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 6000).astype("<i2").tobytes()


def _wav(data: bytes) -> tuple[int, int, np.ndarray]:
    with wave.open(io.BytesIO(data)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        return w.getnchannels(), w.getframerate(), frames


def test_spooled_then_uploaded_when_finished(s3_endpoint: str, tmp_path: Path) -> None:
    client = boto3.client("s3")
    storage = S3Storage.from_url(f"s3://{BUCKET}/calls", client=client, spool_dir=tmp_path)
    recording = CallRecording(storage, "abc.wav")
    recording.start(0.0)
    packet = _tone(0.02)
    for i in range(150):  # 3 s of caller audio
        recording.caller_audio(packet, 8000, (i + 1) * 0.02)
    recording.close()
    assert list(tmp_path.iterdir()) == [tmp_path / "abc.wav"]  # spooled, not yet uploaded
    storage.finish("abc.wav")
    assert list(tmp_path.iterdir()) == []  # the spool file is gone
    body = client.get_object(Bucket=BUCKET, Key="calls/abc.wav")
    assert body["ContentType"] == "audio/wav"
    channels, rate, frames = _wav(body["Body"].read())
    assert (channels, rate) == (2, 8000) and abs(len(frames) - 3 * 8000) < 200
    assert np.abs(frames[:, 0].astype(np.int32)).max() > 5000
    assert storage.uri("abc.wav") == f"s3://{BUCKET}/calls/abc.wav"


@virtual_time
async def test_record_store_puts_recordings_in_the_bucket(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_RECORDINGS_S3", f"s3://{BUCKET}/rec/")
    config = RecordsConfig.resolve(local=False, enabled=True, recording=True)
    store = RecordStore(config)
    assert isinstance(store.storage, S3Storage)
    record_id, recorder = store.begin(provider="twilio", call_id="CA0123456789")
    assert recorder.recording is not None
    recorder.recording.caller_audio(_tone(0.5), 8000, recorder.t0 + 0.5)
    record = store.end(record_id, "ok")
    assert record is not None
    await store.flush()  # the upload runs in a worker thread after the call
    assert record["recording"]["stored"] is True
    assert record["recording"]["uri"] == f"s3://{BUCKET}/rec/{record_id}.wav"
    obj = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"rec/{record_id}.wav")
    channels, _, frames = _wav(obj["Body"].read())
    assert channels == 2 and len(frames) >= 4000
