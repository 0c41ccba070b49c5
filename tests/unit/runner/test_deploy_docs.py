"""The deployment examples stay consistent with the runner (probe paths, flags, grace)."""

from __future__ import annotations

from pathlib import Path

import yaml

from callpipe.runner.run import build_parser

DEPLOY = Path(__file__).resolve().parents[3] / "docs" / "deploy"


def test_kubernetes_example_matches_the_runner() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    args = build_parser().parse_args(container["args"][2:])  # after "python bot.py"
    prestop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > prestop + args.drain_timeout + 10
    assert args.host == "0.0.0.0" and args.proxy and args.transport == "twilio"
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert "CALLPIPE_STREAM_SECRET" in secret["stringData"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_nginx_example_retries_draining_instances() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
