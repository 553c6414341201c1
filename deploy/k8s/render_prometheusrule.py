"""Write deploy/k8s/base/prometheusrule.yaml from deploy/prometheus/alerts.yml (same groups).

python deploy/k8s/render_prometheusrule.py          # rewrite the PrometheusRule
python deploy/k8s/render_prometheusrule.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[1]
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RULE = DEPLOY / "k8s" / "base" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/k8s/render_prometheusrule.py: edit the
# alerts there and run the script again (a test fails while the two differ).
"""


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line strings, so the expressions stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(alerts_text: str) -> str:
    groups = yaml.safe_load(alerts_text)["groups"]
    rule: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "timeback-relay",
            "labels": {
                "app.kubernetes.io/name": "timeback-relay",
                "app.kubernetes.io/component": "relay",
            },
        },
        "spec": {"groups": groups},
    }
    body = yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)
    return HEADER + body


def main(argv: list[str]) -> int:
    text = render(ALERTS.read_text())
    if "--check" in argv:
        if not RULE.exists() or RULE.read_text() != text:
            print(f"{RULE} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    RULE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
