"""Configuration and environment: the run's configuration, environments and evaluation
protocols, each collapsed (long)."""

from __future__ import annotations

import json
from collections import Counter

from roz.report import html
from roz.report.sections.base import Section


class Config(Section):
    sid = "config"
    title = "Configuration and environment"

    def collect(self, ctx):
        return {"envs": Counter(json.dumps(u.env, sort_keys=True, default=str) for u in ctx.units),
                "protocols": Counter(json.dumps(u.protocol, sort_keys=True, default=str) for u in ctx.units)}

    def render(self, data, ctx, files):
        envs, protos = data["envs"], data["protocols"]
        body = [f"<p>Run directory: <code>{html.esc(ctx.root)}</code>.</p>",
                "<details><summary>Run configuration (JSON)</summary>", html.pre_json(ctx.meta.get("config", {})),
                "</details>", f"<details><summary>Environment ({len(envs)} distinct)</summary>"]
        body += _counted(envs)
        body.append("</details>")
        body.append(f"<details><summary>Evaluation protocols ({len(protos)} distinct)</summary>")
        body += _counted(protos)
        body.append("</details>")
        return "\n".join(body)


def _counted(dumps: Counter) -> list[str]:
    return [f'<p class="muted">{n} unit(s):</p>' + html.pre_json(json.loads(d)) for d, n in dumps.most_common()]
