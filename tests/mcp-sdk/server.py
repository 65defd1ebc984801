"""An MCP stdio server built with the official Python SDK (`mcp`, pinned in
requirements.txt), for tapedeck's end-to-end tests (tests/tests/mcp_clients.rs).

It serves both protocol eras the SDK knows: the `initialize` handshake
(2024-11-05 … 2025-11-25) and the stateless 2026-07-28 per-request envelope
(`server/discover`); the client's first request decides.

Tools:
  echo(text)       -> text
  big(size)        -> a text of `size` bytes (ASCII)
  sleep(seconds)   -> "slept", after sleeping
  crash()          -> never answers: the server SIGKILLs itself mid-request
  count(steps)     -> "counted N", after `steps` progress notifications
  ask(question)    -> asks the client (elicitation) and returns its answer

Options (all optional):
  --exit-delay S        after stdin closes, take S seconds before exiting (default 0)
  --on-sigterm MODE     default: die at once (the default action)
                        ignore: ignore SIGTERM (only SIGKILL or the end of
                          --exit-delay ends it)
                        exit-after:S: exit 0, S seconds after the first SIGTERM
  --exit-code N         exit with N when it ends by itself (default 0)

Environment:
  MCP_TEST_PID_DIR      if set, the server writes its pid into DIR/<pid>.pid
                        at start (tests check that no server survives)
"""

import argparse
import os
import signal
import sys
import threading
import time

from pydantic import BaseModel

from mcp.server import MCPServer
from mcp.server.mcpserver import Context


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exit-delay", type=float, default=0.0)
    p.add_argument("--on-sigterm", default="default")
    p.add_argument("--exit-code", type=int, default=0)
    return p.parse_args()


def install_sigterm(mode: str) -> None:
    if mode == "default":
        return
    if mode == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return
    if mode.startswith("exit-after:"):
        delay = float(mode.split(":", 1)[1])
        fired = threading.Event()

        def later() -> None:
            time.sleep(delay)
            os._exit(0)

        def on_term(_signum, _frame) -> None:
            if not fired.is_set():
                fired.set()
                print(f"server {os.getpid()}: SIGTERM, exiting in {delay}s", file=sys.stderr, flush=True)
                threading.Thread(target=later, daemon=True).start()

        signal.signal(signal.SIGTERM, on_term)
        return
    sys.exit(f"unknown --on-sigterm mode: {mode}")


def main() -> int:
    args = parse_args()
    install_sigterm(args.on_sigterm)
    pid_dir = os.environ.get("MCP_TEST_PID_DIR")
    if pid_dir:
        with open(os.path.join(pid_dir, f"{os.getpid()}.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")

    server = MCPServer("tapedeck-test-python", version="1.0.0")

    @server.tool(structured_output=False)
    def echo(text: str) -> str:
        """Returns its text argument."""
        return text

    @server.tool(structured_output=False)
    def big(size: int) -> str:
        """Returns a text of `size` bytes."""
        return ("0123456789abcdef" * (size // 16 + 1))[:size]

    @server.tool(structured_output=False)
    async def sleep(seconds: float) -> str:
        """Sleeps, then answers."""
        import anyio

        await anyio.sleep(seconds)
        return "slept"

    @server.tool(structured_output=False)
    async def count(steps: int, ctx: Context) -> str:
        """Reports progress `steps` times, then answers."""
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        return f"counted {steps}"

    class Answer(BaseModel):
        answer: str

    @server.tool(structured_output=False)
    async def ask(question: str, ctx: Context) -> str:
        """Asks the client (elicitation), then returns what it answered."""
        result = await ctx.elicit(question, Answer)
        data = getattr(result, "data", None)
        return f"{result.action}: {data.answer if data else ''}"

    @server.tool(structured_output=False)
    def crash() -> str:
        """Kills this server with SIGKILL before answering."""
        os.kill(os.getpid(), signal.SIGKILL)
        return "unreachable"

    # Returns once stdin is closed.
    server.run("stdio")
    if args.exit_delay > 0:
        print(f"server {os.getpid()}: stdin closed, exiting in {args.exit_delay}s", file=sys.stderr, flush=True)
        time.sleep(args.exit_delay)
    sys.stdout.flush()
    # os._exit: no interpreter teardown that could wait on SDK worker threads.
    os._exit(args.exit_code)


if __name__ == "__main__":
    sys.exit(main())
