"""The rehearsal report: one self-contained HTML page (no script, no external resource, prints well) and the
same content as JSON. Both are rendered from :meth:`CertificationResult.to_dict`, whose message texts are
already redacted; every value is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from dropcopy_client.certify._model import CertificationResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2430;margin:0 auto;max-width:1180px;
padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0 0 6px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:4px 0 10px}th,td{border:1px solid #d5d9e0;padding:4px 7px;
text-align:left;vertical-align:top}th{background:#f1f3f6;font-weight:600}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f7f8fa;border:1px solid #e2e5ea;padding:8px;margin:4px 0}
td.msg{word-break:break-all;font:11px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:700;font-size:12px;color:#fff}
.pass{background:#1c7c3c}.fail{background:#b42318}.ok{color:#1c7c3c;font-weight:700}.ko{color:#b42318;font-weight:700}
section.scenario{border:1px solid #d5d9e0;border-radius:6px;padding:14px 16px;margin:18px 0;page-break-inside:avoid}
section.failed{border-color:#b42318}.muted{color:#5b6472}.in{color:#0b5cad}.out{color:#7a3e9d}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}
@media print{details{display:block}details>*{display:block}body{max-width:none}}
"""


def report_json(result: CertificationResult) -> str:
    """The report as JSON text (UTF-8, indented, stable key order)."""
    return json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n"


def report_html(result: CertificationResult) -> str:
    """The report as one self-contained HTML page."""
    data = result.to_dict()
    e = _e
    verdict = "PASSED" if data["passed"] else "FAILED"
    badge = _badge(data["passed"], verdict)
    summary = data["summary"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Drop Copy 4.0 AutoCert+ rehearsal: {verdict}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header>",
        f"<h1>Drop Copy 4.0 AutoCert+ rehearsal {badge}</h1>",
        f"<p>{summary['passed']} of {summary['scenarios']} scenarios passed. Run from {e(data['started_at'])} to "
        f"{e(data['finished_at'])} (UTC) by <code>dropcopy certify</code> against the local CME-like simulator "
        "(127.0.0.1): this is a rehearsal, not CME's certification.</p>",
        "</header>",
        _profile(data),
        _summary_table(data),
    ]
    for number, scenario in enumerate(data["scenarios"], 1):
        parts.append(_scenario(number, scenario))
    parts += [
        "<footer><h3>What this rehearsal cannot prove</h3><p class=muted>The simulator follows CME's published "
        "material; where CME publishes nothing (the SendingTime tolerance, the exact texts of some Logouts, the "
        "answer to a resend beyond 48 hours or over 2,500 messages, the complete AutoCert+ F&amp;O test list) it "
        "makes a documented choice. Key secrets and logon signatures never appear in this report: Logons show "
        "<code>1402=***</code>. See docs/guides/certification.md.</p></footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(result: CertificationResult, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``dropcopy-certify-<UTC time>.html`` and ``.json`` into ``directory`` (created if needed);
    returns their paths. The files are readable by their owner only."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = "dropcopy-certify-" + result.started_at.strftime("%Y%m%d-%H%M%S")
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    for path, text in ((html_path, report_html(result)), (json_path, report_json(result))):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    return html_path, json_path


# ---------------------------------------------------------------------------------------------- pieces


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def _badge(passed: bool, text: str | None = None) -> str:
    label = text or ("passed" if passed else "failed")
    return f'<span class="badge {"pass" if passed else "fail"}">{_e(label)}</span>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _profile(data: dict[str, Any]) -> str:
    p = data["profile"]
    e = _e
    rows = [
        ["configuration", e(p["source"])],
        [
            "CGW target (49)",
            e(p["cgw"]["sender_comp_id"]) + f" <span class=muted>group {e(p['cgw']['group'])}</span>",
        ],
        [
            "MSGW target (49), segments (57)",
            e(p["msgw"]["sender_comp_id"]) + " / " + e(", ".join(p["msgw"]["segments"])),
        ],
        [
            "operator (50)",
            e(p["cgw"]["operator"])
            + (f" / {e(p['msgw']['operator'])}" if p["msgw"]["operator"] != p["cgw"]["operator"] else ""),
        ],
        ["location (142)", e(p["location"])],
        [
            "application (1603 / 1604 / 1605)",
            f"{e(p['app_name'])} / {e(p['app_version'])} / {e(p['app_vendor'])}",
        ],
        ["heartbeat (108)", e(p["heartbeat"]) + " s"],
        ["your handler", e(p.get("handler") or "none (--handler module:function rehearses your own code)")],
    ]
    rows += [["software", e(", ".join(f"{k} {v}" for k, v in data["versions"].items()))]]
    notes = "".join(f"<li>{e(n)}</li>" for n in p.get("notes", []))
    return (
        "<section><h2>What was rehearsed</h2>"
        + _table(["", ""], rows)
        + (f"<p>Filled in from the built-in example:</p><ul>{notes}</ul>" if notes else "")
        + "<p class=muted>Every scenario runs against its own simulator on 127.0.0.1 with rehearsal keys made "
        "for these session ids; the configured gateways and key file are never used.</p></section>"
    )


def _summary_table(data: dict[str, Any]) -> str:
    rows = []
    for n, s in enumerate(data["scenarios"], 1):
        rows.append(
            [
                str(n),
                f'<a href="#{_e(s["name"])}">{_e(s["name"])}</a>',
                _e(s["title"]),
                _e(s["suite"]),
                _badge(s["passed"]),
                f"{s['seconds']:.1f} s",
                _e(s["reason"]),
            ]
        )
    return (
        "<section><h2>Scenarios</h2>"
        + _table(["#", "scenario", "AutoCert+ test", "suite", "result", "time", "why it failed"], rows)
        + "</section>"
    )


def _scenario(number: int, s: dict[str, Any]) -> str:
    e = _e
    out = [
        f'<section class="scenario{"" if s["passed"] else " failed"}" id="{e(s["name"])}">',
        f"<h2>{number}. {e(s['title'])} {_badge(s['passed'])}</h2>",
        f"<p>{e(s['purpose'])}</p>",
        f"<p class=muted>scenario <code>{e(s['name'])}</code> &middot; {e(s['suite'])} &middot; source {e(s['source'])}"
        f" &middot; started {e(s['started_at'])} &middot; {s['seconds']:.1f} s</p>",
    ]
    if not s["passed"]:
        out.append(f"<p class=ko>Failed: {e(s['reason'])}</p>")
    out.append(
        "<h3>AutoCert+ steps</h3><ol>" + "".join(f"<li>{e(x)}</li>" for x in s["autocert_steps"]) + "</ol>"
    )
    out.append(
        "<h3>What the rehearsal did</h3>"
        + _table(["time (UTC)", "step"], [[e(x["at"][11:23]), e(x["text"])] for x in s["steps"]])
    )
    out.append(
        "<h3>Checks</h3>"
        + _table(
            ["", "expected", "seen"],
            [
                [
                    "<span class=ok>&#10003;</span>" if c["passed"] else "<span class=ko>&#10007;</span>",
                    e(c["name"]),
                    e(c["detail"]),
                ]
                for c in s["checks"]
            ],
        )
    )
    if s["reports"]:
        out.append("<h3>Fields to report</h3>")
        for report in s["reports"]:
            out.append(
                f"<p><b>{e(report['title'])}</b></p>"
                + _table(
                    ["tag", "field", "value"],
                    [[e(f["tag"]), e(f["name"]), f"<code>{e(f['value'])}</code>"] for f in report["fields"]],
                )
            )
    handler = s.get("handler")
    if handler is not None:
        out.append(
            f"<h3>Your handler</h3><p><code>{e(handler['target'])}</code>: {handler['calls']} calls, "
            f"{handler['business_events']} business messages, {len(handler['errors'])} exceptions.</p>"
        )
        out += [f"<pre>{e(tb)}</pre>" for tb in handler["errors"]]
    if s["notes"]:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{e(n)}</li>" for n in s["notes"]) + "</ul>")
    if s["error"]:
        out.append(f"<h3>Error</h3><pre>{e(s['error'])}</pre>")
    out.append("<h3>Messages exchanged</h3>")
    for session in s["sessions"]:
        rows = []
        for m in session["messages"]:
            inbound = m["direction"] == "client->CME"
            arrow = (
                "<span class=in>client &rarr; CME</span>"
                if inbound
                else "<span class=out>CME &rarr; client</span>"
            )
            rows.append(
                [
                    e(m["at"][11:23]),
                    arrow,
                    e(m["seq"]),
                    e(m["summary"]),
                    f"<span class=msg>{e(m['text'])}</span>",
                ]
            )
        out.append(
            f"<details{' open' if not s['passed'] else ''}><summary>{e(session['session'])}: "
            f"{len(session['messages'])} messages</summary>"
            + _table(
                ["time", "direction", "34", "message", "as on the wire (| = SOH, secrets redacted)"], rows
            ).replace("<td><span class=msg>", "<td class=msg><span class=msg>")
            + "</details>"
        )
    out.append("</section>")
    return "\n".join(out)
