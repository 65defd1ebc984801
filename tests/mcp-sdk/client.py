"""An MCP client built with the official Python SDK (`mcp`, pinned in
requirements.txt), for tapedeck's end-to-end tests (tests/tests/mcp_clients.rs).

It runs --sessions concurrent sessions. Session i launches its server with the
SDK's stdio transport (`mcp.Client(StdioServerParameters(...))`): the command
is --command (a JSON array), cycled over when --command is repeated, with
`{i}` and `{mode}` replaced in every element. Each session lists the tools,
calls `echo` --calls times and `big` once (--big bytes), checks the answers,
then leaves the client's context: the SDK's own shutdown sequence (close the
server's stdin, wait 2 s, SIGTERM the process group, wait 2 s, SIGKILL).

--mode is the SDK's connect mode, cycled over when repeated: `legacy` (the
`initialize` handshake, 2025-11-25), `auto` (probes `server/discover`, falls
back to `initialize`), or `2026-07-28` (the stateless era, no probe).

The SDK's stdio transport is observed from the inside: its process creation
and line parsing are wrapped to count the lines it wrote to the launched
process and the lines it read back (`sent`, `received`: what a recording of
the session must hold), and `_stop_server_process` (its stop sequence) and
`_terminate_process_tree` (its SIGTERM / SIGKILL escalation) to record when
they ran and how the process ended.

Prints one JSON object on stdout:
  {"sdk": "python", "sdk_version", "sessions", "ok", "failed",
   "per_session": [{"index", "mode", "command", "ok", "error",
                    "protocol_version", "calls", "sent", "received", "seconds",
                    "close_seconds", "pid", "returncode", "signalled",
                    "escalated", "escalation_after"}]}
`returncode` is the launched process's (negative: killed by that signal);
`escalated` says whether the SDK had to SIGTERM it (it had not exited 2 s
after its stdin closed). Exit status 0 when every session was ok, else 1.
"""

import argparse
import contextvars
import json
import os
import sys
import time
import traceback
from importlib.metadata import version as package_version

import anyio
from mcp import Client, StdioServerParameters
from mcp.client import stdio as sdk_stdio

# The per-session record the wrapped SDK functions fill in.
_current: contextvars.ContextVar[dict] = contextvars.ContextVar("session_record")

_orig_stop = sdk_stdio._stop_server_process
_orig_terminate = sdk_stdio._terminate_process_tree
_orig_create = sdk_stdio._create_platform_compatible_process
_orig_parse_line = sdk_stdio._parse_line


async def _traced_create(*args, **kwargs):
    process = await _orig_create(*args, **kwargs)
    record = _current.get(None)
    if record is not None:
        record["pid"] = process.pid
        stdin = process.stdin
        send = stdin.send

        async def counting_send(data: bytes) -> None:
            await send(data)
            record["sent"] += data.count(b"\n")

        stdin.send = counting_send
    return process


def _traced_parse_line(line: str):
    record = _current.get(None)
    if record is not None:
        record["received"] += 1
    return _orig_parse_line(line)


async def _traced_stop(process):
    record = _current.get(None)
    started = time.monotonic()
    if record is not None:
        record["pid"] = process.pid
        record["_stop_started"] = started
    try:
        await _orig_stop(process)
    finally:
        if record is not None:
            record["returncode"] = process.returncode
            record["stop_seconds"] = round(time.monotonic() - started, 3)


async def _traced_terminate(process):
    record = _current.get(None)
    if record is not None:
        record["escalated"] = True
        record["escalation_after"] = round(time.monotonic() - record.get("_stop_started", time.monotonic()), 3)
    await _orig_terminate(process)


sdk_stdio._stop_server_process = _traced_stop
sdk_stdio._terminate_process_tree = _traced_terminate
sdk_stdio._create_platform_compatible_process = _traced_create
sdk_stdio._parse_line = _traced_parse_line


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--big", type=int, default=100_000)
    p.add_argument("--mode", action="append", default=None)
    p.add_argument("--command", action="append", required=True, help="a JSON array: program and arguments")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the launched command")
    p.add_argument("--cwd", default=None)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per session, shutdown included")
    p.add_argument("--extras", action="store_true",
                   help="also call `count` (progress notifications), `ask` (an elicitation the client "
                        "answers) and `echo` twice with the same text; their results go into `extras`")
    return p.parse_args()


def text_of(result) -> str:
    if result.is_error:
        raise RuntimeError(f"tool error: {result.content!r}")
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def extras(client) -> dict:
    """Progress, an elicitation answered by this client, a repeated call."""
    progress = []

    async def on_progress(value, total, message):
        progress.append([value, total, message])

    counted = text_of(await client.call_tool("count", {"steps": 3}, progress_callback=on_progress))
    asked = text_of(await client.call_tool("ask", {"question": "Proceed?"}))
    same = [text_of(await client.call_tool("echo", {"text": "same"})) for _ in range(2)]
    return {"progress": progress, "counted": counted, "asked": asked, "same": same}


async def answer_elicitation(context, params):
    """Accepts every elicitation, answering "yes" (the `ask` tool)."""
    from mcp import types
    return types.ElicitResult(action="accept", content={"answer": "yes"})


async def run_session(index: int, args: argparse.Namespace, env: dict[str, str], out: list) -> None:
    modes = args.mode or ["legacy"]
    mode = modes[index % len(modes)]
    template = json.loads(args.command[index % len(args.command)])
    command = [part.replace("{i}", str(index)).replace("{mode}", mode) for part in template]
    record: dict = {
        "index": index,
        "mode": mode,
        "command": command,
        "ok": False,
        "error": None,
        "protocol_version": None,
        "calls": 0,
        "sent": 0,
        "received": 0,
        "escalated": False,
        "escalation_after": None,
        "pid": None,
        "returncode": None,
    }
    out.append(record)
    _current.set(record)
    params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=args.cwd)
    started = time.monotonic()
    closing = None
    try:
        with anyio.fail_after(args.timeout):
            async with Client(params, mode=mode, elicitation_callback=answer_elicitation) as client:
                record["protocol_version"] = client.protocol_version
                tools = await client.list_tools()
                names = {t.name for t in tools.tools}
                if not {"echo", "big"} <= names:
                    raise RuntimeError(f"tools/list lacks echo or big: {sorted(names)}")
                for k in range(args.calls):
                    text = f"session {index} call {k}"
                    got = text_of(await client.call_tool("echo", {"text": text}))
                    if got != text:
                        raise RuntimeError(f"echo returned {got[:80]!r}, not {text!r}")
                    record["calls"] += 1
                got = text_of(await client.call_tool("big", {"size": args.big}))
                if len(got) != args.big:
                    raise RuntimeError(f"big returned {len(got)} bytes, not {args.big}")
                record["calls"] += 1
                if args.extras:
                    record["extras"] = await extras(client)
                closing = time.monotonic()
            # Leaving the context ran the SDK's shutdown sequence.
        record["ok"] = True
    except BaseException as e:  # noqa: BLE001 - reported, not raised
        if isinstance(e, KeyboardInterrupt):
            raise
        record["error"] = "".join(traceback.format_exception_only(e)).strip()
        record["trace"] = traceback.format_exc()[-2000:]
    finally:
        now = time.monotonic()
        record["seconds"] = round(now - started, 3)
        record["close_seconds"] = round(now - closing, 3) if closing is not None else None
        record.pop("_stop_started", None)
        rc = record["returncode"]
        record["signalled"] = rc is not None and rc < 0


async def main() -> int:
    args = parse_args()
    env = {}
    for kv in args.env:
        key, _, value = kv.partition("=")
        env[key] = value
    results: list = []
    async with anyio.create_task_group() as tg:
        for i in range(args.sessions):
            tg.start_soon(run_session, i, args, env, results)
    results.sort(key=lambda r: r["index"])
    ok = sum(1 for r in results if r["ok"])
    summary = {
        "sdk": "python",
        "sdk_version": package_version("mcp"),
        "sessions": len(results),
        "ok": ok,
        "failed": len(results) - ok,
        "per_session": results,
    }
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    code = anyio.run(main)
    sys.stdout.flush()
    os._exit(code)
