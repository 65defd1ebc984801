"""Drives scripts/dictionary/corpus_server.py (through whatever command is
given, e.g. `tapedeck record -- python3 corpus_server.py`) with the
official Python SDK client: lists tools, resources, templates and prompts,
calls every tool with a few argument sets (one of them failing), reads
resources and gets prompts, in both protocol eras.

usage: corpus_client.py --command JSON [--sessions N]
"""

import argparse
import json

import anyio
from mcp import Client, StdioServerParameters

CALLS = [
    ("search_issues", {"query": "crash timeout", "repo": "acme/web", "state": "all", "limit": 5}),
    ("search_issues", {"query": "dark mode", "repo": "acme/app"}),
    ("get_issue", {"repo": "acme/web", "number": 1201}),
    ("get_issue", {"repo": "acme/web", "number": 9}),
    ("read_file", {"path": "src/server.js"}),
    ("list_directory", {"path": ".", "recursive": False}),
    ("get_weather", {"city": "Lisbon"}),
    ("get_weather", {"city": "Osaka", "units": "imperial"}),
    ("run_query", {"sql": "SELECT id, email, created_at, plan FROM users ORDER BY created_at DESC", "max_rows": 6}),
    ("create_event", {"title": "Design review", "start": "2026-12-08T14:00:00Z", "end": "2026-12-08T15:00:00Z", "attendees": ["ana@example.com", "raj@example.com"], "location": "Room 4"}),
]


async def session(command: list[str], mode: str) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode=mode) as client:
        await client.list_tools()
        await client.list_resources()
        await client.list_resource_templates()
        await client.list_prompts()
        for name, arguments in CALLS:
            await client.call_tool(name, arguments)
        for uri in ["file:///project/README.md", "config://app/settings", "issues://acme/web/1200", "file:///missing"]:
            try:
                await client.read_resource(uri)
            except Exception:  # noqa: BLE001 - an error answer is traffic too
                pass
        await client.get_prompt("code_review", {"code": "def add(a, b):\n    return a - b\n", "language": "python"})
        await client.get_prompt("summarize_issue", {"repo": "acme/web", "number": "1202"})
        try:
            await client.send_ping()
        except Exception:  # noqa: BLE001 - the stateless era has no ping
            pass


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--command", required=True)
    p.add_argument("--sessions", type=int, default=2)
    args = p.parse_args()
    command = json.loads(args.command)
    for i in range(args.sessions):
        await session(command, ["legacy", "2026-07-28"][i % 2])


if __name__ == "__main__":
    anyio.run(main)
