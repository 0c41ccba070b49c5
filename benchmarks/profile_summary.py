"""Where the bot's time goes: py-spy raw stacks (``run.py --profile``) summed into buckets.

Each sample goes to the first bucket one of whose markers appears in its stack, so the buckets
add up to 100 %; ``--self N`` also lists the N functions with the most samples of their own.

    .venv/bin/python benchmarks/profile_summary.py benchmarks/results/<run>/<tag>.pyspy.txt
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "call setup/teardown (services' clients and sockets, pipeline start/stop)",
        ("_run_start", "AIService.start", "OpenAIHTTPMixin", "cleanup (", "_connect", "connect ("),
    ),
    ("Silero inference (batched across calls)", ("SileroBatchEngine._run_pending",)),
    ("STT: audio sent to Deepgram", ("StreamingSTTService._send_loop", "send_audio")),
    (
        "STT: results from Deepgram",
        ("DeepgramSTTService._on_message", "ProviderWebsocket._receive"),
    ),
    (
        "TTS: audio from Cartesia/ElevenLabs",
        (
            "CartesiaTTSService",
            "ElevenLabsTTSService",
            "TTSService._output_loop",
            "TTSService._play",
        ),
    ),
    ("LLM: streamed completion", ("OpenAILLMService", "LLMService._run_context")),
    ("output transport: pacing and media sends", ("BaseOutputTransport", "write_audio_chunk")),
    ("input transport: receive, parse, VAD, frames downstream", ("_receive_loop",)),
    ("server WebSocket protocol (uvicorn data_received)", ("data_received", "SansIOProtocol")),
]
LOOP = "event loop itself (uvloop run/select)"


def summarize(path: Path, top_self: int) -> str:
    buckets: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        if frames[-1].startswith("Runner.run (") or "select (" in frames[-1]:
            buckets[LOOP] += n
            continue
        for name, markers in BUCKETS:
            if any(marker in frame for frame in frames for marker in markers):
                buckets[name] += n
                break
        else:
            buckets["other"] += n
    lines = [f"{total} samples ({path.name})"]
    lines += [f"{100 * n / total:5.1f} %  {name}" for name, n in buckets.most_common()]
    if top_self:
        lines.append("functions with the most samples of their own:")
        lines += [f"{100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top_self)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--self", dest="top_self", type=int, default=0)
    args = parser.parse_args()
    print(summarize(args.profile, args.top_self))


if __name__ == "__main__":
    main()
