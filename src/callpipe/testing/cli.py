"""``callpipe call URL``: call a bot's WebSocket as a telephony provider would, from a terminal.

Examples::

    callpipe call ws://localhost:7860/ws --say "hello there"
    callpipe call ws://localhost:7860/ws --wav question.wav --dtmf "1@3.0,#@9.5" --record call.wav
    callpipe call ws://localhost:7860/ws --provider telnyx --say "hi" --barge-in 0.5
    callpipe call ws://localhost:7860/ws --say "hi" --calls 20 --jitter 40
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import wave
from collections.abc import Sequence
from pathlib import Path

from callpipe.testing.simulator.call import NetworkFaults
from callpipe.testing.simulator.diagnosis import explain_failure
from callpipe.testing.simulator.dialects import DIALECTS
from callpipe.testing.simulator.result import CallResult, summarize_latencies
from callpipe.testing.simulator.script import CallScript, parse_dtmf_schedule, run_calls
from callpipe.testing.simulator.sources import AudioSource, read_wav


class _Utterance(argparse.Action):
    """Keeps --say and --wav in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        items: list[AudioSource] = list(getattr(namespace, "utterances", None) or [])
        items.append(Path(str(values)) if option_string == "--wav" else str(values))
        namespace.utterances = items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callpipe call",
        allow_abbrev=False,
        description="Call a bot's media WebSocket as Twilio/Telnyx/Plivo/Exotel/Vonage would.",
    )
    p.add_argument("url", help="the bot's WebSocket URL, e.g. ws://localhost:7860/ws")
    p.add_argument("--provider", "-p", choices=sorted(DIALECTS), default="twilio")
    p.add_argument(
        "--say", action=_Utterance, metavar="TEXT", help="say TEXT (local TTS); repeatable"
    )
    p.add_argument("--wav", action=_Utterance, metavar="FILE", help="say a WAV file; repeatable")
    p.add_argument("--dtmf", default="", metavar="KEYS@SECS,...", help='e.g. "1@3.0,#@9.5"')
    p.add_argument(
        "--barge-in",
        type=float,
        metavar="SECS",
        help="start each utterance SECS after the bot starts talking (interrupt it)",
    )
    p.add_argument("--no-greeting", action="store_true", help="talk without waiting for a greeting")
    p.add_argument("--quiet", type=float, default=0.8, help="bot silence that ends its turn (s)")
    p.add_argument("--linger", type=float, default=2.0, help="quiet time before hanging up (s)")
    p.add_argument("--max-duration", type=float, default=120.0, help="hang up after this (s)")
    p.add_argument("--record", metavar="WAV", help="save a stereo WAV (caller left, bot right)")
    p.add_argument(
        "--words",
        action="store_true",
        help="also print what each side said (local Whisper; needs callpipe[whisper-model])",
    )
    p.add_argument("--calls", type=int, default=1, help="place N calls at once (load)")
    p.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="random send delay")
    p.add_argument("--stall", metavar="AT:SECS", help="freeze the network at AT for SECS")
    p.add_argument("--close-at", type=float, metavar="SECS", help="cut the TCP connection")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def script_from_args(args: argparse.Namespace) -> CallScript:
    faults = NetworkFaults(jitter_ms=args.jitter, close_at=args.close_at)
    if args.stall:
        at, _, secs = args.stall.partition(":")
        faults.stall_at, faults.stall_secs = float(at), float(secs or 1.0)
    return CallScript(
        utterances=list(getattr(args, "utterances", None) or []),
        dtmf=parse_dtmf_schedule(args.dtmf),
        wait_for_greeting=not args.no_greeting,
        barge_in_after=args.barge_in,
        quiet_secs=args.quiet,
        linger_secs=args.linger,
        max_duration=args.max_duration,
        faults=faults,
    )


def _words(result: CallResult) -> str:
    """The transcript block of the timeline (who said what; latency on answers)."""
    try:
        lines = result.transcript()
    except ImportError as exc:
        return f"words: not available ({exc})"
    return "\n".join(["words (as the caller heard them):", *(f"  {line}" for line in lines)])


def _report(results: list[CallResult], record: str | None, words: bool = False) -> int:
    if len(results) == 1:
        result = results[0]
        print(result.timeline())
        if words:
            print(_words(result))
        if record:
            print(f"recording: {result.save_wav(record)} (caller left, bot right)")
        why = explain_failure(result)
        if why:
            print(why, file=sys.stderr)
        return 1 if why else 0
    ok = sum(not r.failed for r in results)
    print(f"{len(results)} calls: {ok} completed, {len(results) - ok} failed")
    first_failure = next((explain_failure(r) for r in results if r.failed), None)
    if first_failure:
        print(f"first failure: {first_failure}", file=sys.stderr)
    for key, value in summarize_latencies(results).items():
        print(f"  {key:>6}: {value * 1000:.0f} ms" if key != "turns" else f"  turns: {value:.0f}")
    if record:
        for n, result in enumerate(results, 1):
            path = Path(record).with_stem(f"{Path(record).stem}-{n}")
            result.save_wav(path)
        print(f"recordings: {Path(record).with_stem(Path(record).stem + '-N')}")
    return 0 if ok == len(results) else 1


def _check_wavs(utterances: Sequence[AudioSource]) -> None:
    """Read every --wav file before dialling, so a typo is an error message, not a traceback
    from the middle of a call."""
    for source in utterances:
        if isinstance(source, Path):
            if not source.is_file():
                raise ValueError(f"no such WAV file: {source}")
            try:
                read_wav(source, 8000)
            except (wave.Error, EOFError) as exc:
                raise ValueError(f"{source}: not a readable 16-bit PCM WAV file ({exc})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        script = script_from_args(args)
        _check_wavs(script.utterances)
    except (ValueError, OSError, EOFError, wave.Error) as exc:
        print(f"callpipe call: {exc}", file=sys.stderr)
        return 2
    if script.dtmf and not DIALECTS[args.provider].carries_dtmf:
        print(f"callpipe call: {args.provider} streams carry no DTMF (--dtmf)", file=sys.stderr)
        return 2
    headers = dict(h.split(":", 1) for h in args.header if ":" in h)
    results = asyncio.run(
        run_calls(args.url, script, max(1, args.calls), args.provider, headers=headers or None)
    )
    return _report(results, args.record, args.words)


if __name__ == "__main__":
    sys.exit(main())
