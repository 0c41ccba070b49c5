"""``callpipe dial``: ask a running runner to place a call (or a campaign from a CSV).

``callpipe dial +15551234567 --provider twilio --from +15557654321 -x bot.example.com`` posts
to ``https://HOST/calls`` with ``CALLPIPE_API_KEY`` and prints the dial. With ``--csv`` it runs
a campaign (:mod:`callpipe.runner.campaign`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from callpipe.providers import registry
from callpipe.runner.http_guard import API_KEY_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callpipe dial",
        description="Place outbound calls through a running callpipe runner (POST /calls).",
    )
    parser.add_argument("number", nargs="?", help="the number to call (E.164, e.g. +15551234567)")
    parser.add_argument("--csv", help="a campaign: CSV with a 'number' column (+ metadata columns)")
    parser.add_argument("--provider", choices=[d.name for d in registry.dialers()], required=True)
    parser.add_argument(
        "--from", dest="from_", metavar="NUMBER", required=True, help="your caller id"
    )
    parser.add_argument("-x", "--host", required=True, help="the runner's public host")
    parser.add_argument(
        "--scheme", default="https", choices=("https", "http"), help="http for a local runner"
    )
    parser.add_argument(
        "--machine-detection", default="off", choices=("off", "enable", "detect_end")
    )
    parser.add_argument("--metadata", default="{}", help="JSON object handed to the bot")
    parser.add_argument("--api-key", default=None, help=f"default: ${API_KEY_ENV}")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1.0, help="campaign: dials per second")
    parser.add_argument("--retries", type=int, default=1, help="campaign: busy/no-answer retries")
    parser.add_argument("--retry-delay", type=float, default=60.0, help="campaign: seconds")
    parser.add_argument("--state", default=None, help="campaign state file (resumable)")
    parser.add_argument("--results", default=None, help="campaign per-number result CSV")
    parser.add_argument("--call-timeout", type=float, default=600.0)
    parser.add_argument("--poll", type=float, default=2.0, help="campaign: status poll interval")
    return parser


def dial_body(args: argparse.Namespace, number: str, extra: dict[str, Any]) -> dict[str, Any]:
    metadata = {**json.loads(args.metadata), **extra}
    return {
        "to": number,
        "from": args.from_,
        "provider": args.provider,
        "machine_detection": args.machine_detection,
        "metadata": metadata,
    }


async def _dial_one(args: argparse.Namespace, api_key: str) -> int:
    url = f"{args.scheme}://{args.host}"
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        response = await http.post(
            "/calls",
            json=dial_body(args, args.number, {}),
            headers={"Authorization": f"Bearer {api_key}"},
        )
    if response.status_code != 201:
        print(
            f"callpipe dial: refused (HTTP {response.status_code}): {response.text[:300]}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(response.json()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        print(f"callpipe dial: set {API_KEY_ENV} (the runner's API key)", file=sys.stderr)
        return 2
    try:
        metadata = json.loads(args.metadata)
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        print("callpipe dial: --metadata must be a JSON object", file=sys.stderr)
        return 2
    if args.csv:
        from callpipe.runner.campaign import run_campaign_cli

        return asyncio.run(run_campaign_cli(args, api_key))
    if not args.number:
        print("callpipe dial: give a number, or --csv FILE", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_dial_one(args, api_key))
    except httpx.HTTPError as exc:
        print(f"callpipe dial: cannot reach the runner: {exc}", file=sys.stderr)
        return 1
