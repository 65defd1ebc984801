"""An MCP stdio server built with the official Python SDK, whose only job is
to produce varied, realistic MCP traffic for training tapedeck's zstd
dictionary (scripts/train-dictionary.sh): tools with typed input schemas,
structured and text results, errors, resources, resource templates and
prompts. It is not the server the codec benchmark measures
(tests/mcp-sdk/server.py), so the dictionary is not fitted to that traffic.
"""

import json
import sys

from mcp.server import MCPServer

server = MCPServer("corpus-server", version="2.1.0", instructions="Issue tracker, files and calendar for the dictionary corpus.")

ISSUES = [
    {"number": 1200 + i, "title": t, "state": s, "labels": l, "author": a}
    for i, (t, s, l, a) in enumerate(
        [
            ("Crash when opening large files", "open", ["bug", "p1"], "maria"),
            ("Add dark mode to the settings page", "open", ["enhancement"], "kenji"),
            ("Timeout talking to the payments API", "closed", ["bug", "payments"], "olu"),
            ("Document the retry policy", "open", ["docs"], "sam"),
            ("Upgrade the TLS library", "closed", ["security", "dependencies"], "lena"),
        ]
    )
]


@server.tool()
def search_issues(query: str, repo: str, state: str = "open", limit: int = 10) -> dict:
    """Search the issues of a repository by text; returns matching issues with their labels."""
    found = [i for i in ISSUES if state in ("all", i["state"]) and any(w.lower() in i["title"].lower() for w in query.split())]
    return {"repo": repo, "total_count": len(found), "items": found[:limit]}


@server.tool()
def get_issue(repo: str, number: int) -> dict:
    """Fetch one issue with its body and comments."""
    for i in ISSUES:
        if i["number"] == number:
            return {**i, "repo": repo, "body": f"Steps to reproduce:\n1. Open {repo}\n2. See the error\n\nExpected: no error.", "comments": [{"author": "bot", "body": "Thanks for the report!"}]}
    raise ValueError(f"issue {number} not found in {repo}")


@server.tool(structured_output=False)
def read_file(path: str, encoding: str = "utf-8") -> str:
    """Read a text file from the project workspace."""
    lines = [f"// {path}", "import { createServer } from 'node:http';", "", "export function handler(req, res) {", "  res.writeHead(200, { 'content-type': 'application/json' });", "  res.end(JSON.stringify({ ok: true, path: req.url }));", "}"]
    return "\n".join(lines)


@server.tool()
def list_directory(path: str, recursive: bool = False) -> dict:
    """List the entries of a directory in the project workspace."""
    entries = [{"name": n, "type": t, "size": s} for n, t, s in [("src", "directory", 0), ("README.md", "file", 2048), ("package.json", "file", 812), ("tsconfig.json", "file", 344)]]
    return {"path": path, "entries": entries, "recursive": recursive}


@server.tool()
def get_weather(city: str, units: str = "metric") -> dict:
    """Current weather and a three-day forecast for a city."""
    return {"city": city, "units": units, "current": {"temperature": 17.5, "humidity": 62, "conditions": "partly cloudy", "wind": {"speed": 4.1, "direction": "NW"}}, "forecast": [{"day": d, "high": 19 + i, "low": 9 + i, "conditions": c} for i, (d, c) in enumerate([("Monday", "sunny"), ("Tuesday", "rain"), ("Wednesday", "cloudy")])]}


@server.tool()
def run_query(sql: str, database: str = "analytics", max_rows: int = 100) -> dict:
    """Run a read-only SQL query and return the rows."""
    return {"database": database, "columns": ["id", "email", "created_at", "plan"], "rows": [[i, f"user{i}@example.com", f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z", ["free", "pro", "team"][i % 3]] for i in range(min(max_rows, 6))], "row_count": 6, "truncated": False}


@server.tool()
def create_event(title: str, start: str, end: str, attendees: list[str], location: str | None = None) -> dict:
    """Create a calendar event and invite the attendees."""
    return {"id": "evt_8c1f2a", "title": title, "start": start, "end": end, "attendees": [{"email": a, "status": "needsAction"} for a in attendees], "location": location, "htmlLink": "https://calendar.example.com/event?eid=evt_8c1f2a"}


@server.resource("file:///project/README.md", mime_type="text/markdown")
def readme() -> str:
    """The project's README."""
    return "# Project\n\nA small web service.\n\n## Usage\n\n```sh\nnpm install\nnpm start\n```\n"


@server.resource("config://app/settings", mime_type="application/json")
def settings() -> str:
    """The application's settings."""
    return json.dumps({"logLevel": "info", "port": 8080, "features": {"darkMode": True, "betaSearch": False}})


@server.resource("issues://{repo}/{number}")
def issue_resource(repo: str, number: str) -> str:
    """One issue as a resource."""
    return json.dumps({"repo": repo, "number": int(number), "title": ISSUES[0]["title"]})


@server.prompt()
def code_review(code: str, language: str = "python") -> str:
    """Ask for a careful review of a piece of code."""
    return f"Please review the following {language} code for bugs, security issues and readability. Suggest concrete changes.\n\n```{language}\n{code}\n```"


@server.prompt()
def summarize_issue(repo: str, number: str) -> str:
    """Summarize an issue and propose next steps."""
    return f"Summarize issue #{number} of {repo} in three sentences, then list the next steps as a checklist."


if __name__ == "__main__":
    server.run("stdio")
    sys.stdout.flush()
