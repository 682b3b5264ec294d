#!/usr/bin/python3
"""make-local.py - writes alertmanager.local.yml (the local stack's Alertmanager configuration)
from alertmanager.yml, so routing, grouping and inhibition have one source.

The only differences: every receiver keeps its name but sends to one local webhook (the test
HTTP server of the local end-to-end alert test) instead of e-mail/Slack/heartbeat, and the
global e-mail/Slack settings (which name secret files) are left out.

Usage: make-local.py [--webhook-url URL] [--check] [SRC [DEST]]
  SRC   default: alertmanager.yml next to this script
  DEST  default: alertmanager.local.yml next to it; '-' writes to stdout
  --webhook-url  default http://127.0.0.1:9494/alerts
  --check        write nothing; exit 1 (naming the file) when DEST differs from what would be
                 written, so a routing change made in only one file is caught
"""
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_URL = "http://127.0.0.1:9494/alerts"
HEADER = """\
# GENERATED from alertmanager.yml by make-local.py: do not edit; edit alertmanager.yml and run
#   infrastructure/alertmanager/make-local.py
# The local stack's Alertmanager: the same routing, grouping and inhibition, with every receiver
# sending to the local test webhook (the alert end-to-end test's HTTP server).
"""
# Integrations a receiver may have; each one's send_resolved decides the webhook's.
INTEGRATIONS = ("email_configs", "slack_configs", "webhook_configs", "pagerduty_configs",
                "opsgenie_configs", "pushover_configs", "victorops_configs", "wechat_configs",
                "telegram_configs", "sns_configs", "discord_configs", "webex_configs")
# Integrations whose send_resolved defaults to true in Alertmanager 0.25 (e-mail: false).
RESOLVED_DEFAULT = {"email_configs": False}


def local_config(prod, url):
    out = {}
    glob = {k: v for k, v in (prod.get("global") or {}).items()
            if not k.startswith(("smtp_", "slack_", "pagerduty_", "opsgenie_", "wechat_",
                                 "victorops_", "telegram_", "webex_"))}
    if glob:
        out["global"] = glob
    for key, val in prod.items():
        if key in ("global", "receivers"):
            continue
        out[key] = val
    receivers = []
    for rcv in prod.get("receivers") or []:
        resolved = False
        for kind in INTEGRATIONS:
            for cfg in rcv.get(kind) or []:
                resolved |= bool(cfg.get("send_resolved", RESOLVED_DEFAULT.get(kind, True)))
        receivers.append({"name": rcv["name"],
                          "webhook_configs": [{"url": url, "send_resolved": resolved}]})
    out["receivers"] = receivers
    return out


def main(argv):
    url, check, paths = DEFAULT_URL, False, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--webhook-url" and i + 1 < len(argv):
            url = argv[i + 1]
            i += 1
        elif a == "--check":
            check = True
        elif a.startswith("-") and a != "-":
            print(__doc__, file=sys.stderr)
            return 2
        else:
            paths.append(a)
        i += 1
    src = paths[0] if paths else os.path.join(HERE, "alertmanager.yml")
    dest = paths[1] if len(paths) > 1 else os.path.join(HERE, "alertmanager.local.yml")
    with open(src, encoding="utf-8") as f:
        prod = yaml.safe_load(f)
    text = HEADER + yaml.safe_dump(local_config(prod, url), sort_keys=False,
                                   default_flow_style=False, width=100)
    if check:
        try:
            with open(dest, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            print(f"make-local.py: cannot read '{dest}': {e.strerror}", file=sys.stderr)
            return 1
        if current != text:
            print(f"make-local.py: '{dest}' is not what '{src}' generates; run "
                  "infrastructure/alertmanager/make-local.py", file=sys.stderr)
            return 1
        return 0
    if dest == "-":
        sys.stdout.write(text)
    else:
        with open(dest + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(dest + ".tmp", dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
