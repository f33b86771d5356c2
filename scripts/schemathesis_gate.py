"""Reads schemathesis reports for scripts/schemathesis.sh and decides whether the run failed.

What it is: the verdict of scripts/schemathesis.sh (see its header for what fails and why). It
reads the NDJSON event streams of the runs (every request and response), their JSON summaries
and the server's log; it prints each 5xx with a curl command that repeats it, and exits 1 when
the run found a server error, lost a connection, could not test an operation, or the server
died. What it is not: a test runner; schemathesis made every request. `mask` copies stdin to
stdout with this run's secrets replaced by the names of the variables that hold them.

Usage: schemathesis_gate.py mask < console.txt
       schemathesis_gate.py gate --server-log LOG --server-alive 0|1 REPORT_DIR...
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SECRET_VARIABLES = (
    "WARDEN_ADMIN",
    "WARDEN_PEP",
    "WARDEN_USER_TOKEN",
    "WARDEN_SA_SECRET",
    "WARDEN_SA_ID",
    "WARDEN_DEV_HS256_SECRET",
    "WARDEN_TOKEN_KEY",
)
NETWORK_ERROR_WORDS = (
    "connection",
    "timeout",
    "timed out",
    "chunked",
    "remote",
    "protocol",
    "reset",
)


def mask(text: str) -> str:
    """Replaces every secret of this run (from the environment) with `$NAME`."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if value:
            text = text.replace(value, f"${name}")
    basic = (os.environ.get("WARDEN_SA_ID", ""), os.environ.get("WARDEN_SA_SECRET", ""))
    if all(basic):
        encoded = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        text = text.replace(encoded, "$WARDEN_SA_BASIC")
    return text


def decode(payload: dict[str, Any] | None) -> str:
    if not payload:
        return ""
    if "$base64" in payload:
        return base64.b64decode(payload["$base64"]).decode("utf-8", "replace")
    return str(payload.get("string", ""))


def curl_command(request: dict[str, Any]) -> str:
    words = ["curl", "-sS", "-i", "-X", request["method"]]
    for name, values in request.get("headers", {}).items():
        if name.lower() in (
            "user-agent",
            "accept-encoding",
            "accept",
            "connection",
            "content-length",
        ):
            continue
        if name.lower().startswith("x-schemathesis"):
            continue
        for value in values:
            words += ["-H", f"{name}: {value}"]
    body = decode(request.get("body"))
    if body:
        words += ["--data-binary", body]
    words.append(request["uri"])
    return " ".join(quote(mask(word)) for word in words)


def quote(word: str) -> str:
    """Shell-quotes a masked word; a word with `$WARDEN_…` in it is double-quoted so the
    variable expands, when nothing else in it is special inside double quotes."""
    expandable = "$WARDEN_" in word and word.count("$") == word.count("$WARDEN_")
    if expandable and not any(special in word for special in ('"', "\\", "`")):
        return f'"{word}"'
    return shlex.quote(word)


def events(report_dir: Path, kind: str) -> list[Path]:
    return sorted(
        report_dir.glob(f"{kind}-*.{'ndjson' if kind == 'ndjson' else 'json'}")
    )


def gate(arguments: argparse.Namespace) -> int:
    failed: list[str] = []
    server_errors: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    no_response: dict[tuple[str, str], str] = {}
    untested: dict[tuple[str, str], str] = {}
    statuses: Counter[int] = Counter()
    other_failures: Counter[str] = Counter()
    requests = 0

    for report_dir in map(Path, arguments.report_dirs):
        streams = events(report_dir, "ndjson")
        summaries = events(report_dir, "json")
        if not streams or not summaries:
            failed.append(
                f"{report_dir.name}: schemathesis wrote no report (it did not run)"
            )
            continue
        summary = json.loads(summaries[-1].read_text())
        if not summary.get("complete", False):
            failed.append(
                f"{report_dir.name}: the run did not complete ({summary.get('stop_reason')})"
            )
        for failure in summary.get("failures", []):
            if failure.get("code") != "ST101":
                other_failures[f"{failure.get('code')} {failure.get('title')}"] += (
                    failure.get("count", 0)
                )
        with streams[-1].open() as stream:
            for line in stream:
                event = json.loads(line)
                if "NonFatalError" in event:
                    error = event["NonFatalError"]
                    value = error.get("value", {})
                    text = f"{value.get('type')}: {value.get('message', '')}".strip()
                    label = error.get("label", "?")
                    if any(word in text.lower() for word in NETWORK_ERROR_WORDS):
                        no_response.setdefault((label, text[:200]), text)
                    else:
                        untested.setdefault((label, text[:200]), text)
                    continue
                if "ScenarioFinished" not in event:
                    continue
                recorder = event["ScenarioFinished"].get("recorder", {})
                label = recorder.get("label", "?")
                for interaction in (recorder.get("interactions") or {}).values():
                    requests += 1
                    response = interaction.get("response")
                    if response is None:
                        no_response.setdefault(
                            (label, "no response"), curl_command(interaction["request"])
                        )
                        continue
                    status = response["status_code"]
                    statuses[status] += 1
                    if status >= 500:
                        body = decode(response.get("content"))
                        key = (label, report_dir.name, status, body.split(":")[0][:120])
                        server_errors.setdefault(
                            key,
                            {
                                "request": interaction["request"],
                                "body": body,
                                "count": 0,
                            },
                        )
                        server_errors[key]["count"] += 1

    print(
        f"== verdict: {requests} requests; statuses: "
        + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    )
    if other_failures:
        print(
            "Reported, not enforced (other checks; see the schemathesis output above):"
        )
        for name, count in sorted(other_failures.items()):
            print(f"  {name}: {count}")

    for (label, run, status, _), found in sorted(server_errors.items()):
        failed.append(f"{status} on {label}")
        print(
            f"\nSERVER ERROR {status} on {label} ({found['count']} responses, run {run}). Repeat it with:"
        )
        print(f"  {curl_command(found['request'])}")
        print(f"  answer: {mask(found['body'])[:500]}")
    if server_errors:
        print(
            "\n(A 5xx that does not repeat on its own depended on the store's state left by"
            " earlier requests, or on a concurrent one when SCHEMATHESIS_WORKERS > 1.)"
        )
    for (label, _), text in sorted(no_response.items()):
        failed.append(f"no response on {label}")
        print(
            f"\nNO RESPONSE on {label} (crash, dropped connection or hang): {mask(text)[:500]}"
        )
    for (label, _), text in sorted(untested.items()):
        failed.append(f"not tested: {label}")
        print(f"\nNOT TESTED {label}: {mask(text)[:300]}")

    log_lines = Path(arguments.server_log).read_text(errors="replace").splitlines()
    panics = [line for line in log_lines if "panicked" in line]
    errors = [
        line for line in log_lines if '"level":"ERROR"' in line or " ERROR " in line
    ]
    if panics:
        failed.append(f"{len(panics)} panics in the server log")
        print("\nPANICS in the server log:")
        for line in panics[:20]:
            print(f"  {mask(line)[:600]}")
    if errors:
        print(f"\nServer log ERROR lines ({len(errors)}, distinct messages):")
        seen: set[str] = set()
        for line in errors:
            try:
                fields = json.loads(line).get("fields", {})
                message = json.dumps(fields, sort_keys=True)
            except json.JSONDecodeError:
                message = line
            if message not in seen and len(seen) < 20:
                seen.add(message)
                print(f"  {mask(line)[:600]}")
    if arguments.server_alive != "1":
        failed.append("the server is not running any more")
        print("\nThe server exited during the run; its log ends with:")
        for line in log_lines[-20:]:
            print(f"  {mask(line)[:600]}")

    if failed:
        print(f"\n== schemathesis: FAILED ({len(failed)}): " + "; ".join(failed))
        return 1
    print("\n== schemathesis: no server error, no crash, every operation tested")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("mask")
    gate_parser = commands.add_parser("gate")
    gate_parser.add_argument("--server-log", required=True)
    gate_parser.add_argument("--server-alive", required=True)
    gate_parser.add_argument("report_dirs", nargs="+")
    arguments = parser.parse_args()
    if arguments.command == "mask":
        for line in sys.stdin:
            sys.stdout.write(mask(line))
        return 0
    return gate(arguments)


if __name__ == "__main__":
    sys.exit(main())
