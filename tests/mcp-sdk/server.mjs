// An MCP stdio server built with the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json / package-lock.json), for
// tapedeck's end-to-end tests (tests/tests/mcp_clients.rs).
//
// The SDK speaks the `initialize` handshake era only (up to 2025-11-25).
//
// Tools:
//   echo(text)       -> text
//   big(size)        -> a text of `size` bytes (ASCII)
//   sleep(seconds)   -> "slept", after sleeping
//   crash()          -> never answers: the server SIGKILLs itself mid-request
//
// Options (all optional):
//   --exit-delay S        after stdin closes, take S seconds before exiting
//                         (default 0: Node exits by itself once stdin ended,
//                         as an SDK server does)
//   --on-sigterm MODE     default: die at once (the default action)
//                         ignore: ignore SIGTERM
//                         exit-after:S: exit 0, S seconds after the first SIGTERM
//   --exit-code N         exit with N when it ends by itself (default 0)
//
// Environment:
//   MCP_TEST_PID_DIR      if set, the server writes its pid into DIR/<pid>.pid
//                         at start (tests check that no server survives)

import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

function parseArgs(argv) {
  const opts = { exitDelay: 0, onSigterm: 'default', exitCode: 0 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--exit-delay': opts.exitDelay = Number(value); i++; break;
      case '--on-sigterm': opts.onSigterm = value; i++; break;
      case '--exit-code': opts.exitCode = Number(value); i++; break;
      default:
        process.stderr.write(`unknown option: ${argv[i]}\n`);
        process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
process.exitCode = opts.exitCode;

if (opts.onSigterm === 'ignore') {
  process.on('SIGTERM', () => {});
} else if (opts.onSigterm.startsWith('exit-after:')) {
  const delay = Number(opts.onSigterm.slice('exit-after:'.length));
  let fired = false;
  process.on('SIGTERM', () => {
    if (fired) return;
    fired = true;
    process.stderr.write(`server ${process.pid}: SIGTERM, exiting in ${delay}s\n`);
    setTimeout(() => process.exit(0), delay * 1000);
  });
} else if (opts.onSigterm !== 'default') {
  process.stderr.write(`unknown --on-sigterm mode: ${opts.onSigterm}\n`);
  process.exit(2);
}

if (process.env.MCP_TEST_PID_DIR) {
  fs.writeFileSync(path.join(process.env.MCP_TEST_PID_DIR, `${process.pid}.pid`), `${process.pid}\n`);
}

const server = new McpServer({ name: 'tapedeck-test-typescript', version: '1.0.0' });

server.registerTool(
  'echo',
  { description: 'Returns its text argument.', inputSchema: { text: z.string() } },
  async ({ text }) => ({ content: [{ type: 'text', text }] }),
);
server.registerTool(
  'big',
  { description: 'Returns a text of `size` bytes.', inputSchema: { size: z.number().int().nonnegative() } },
  async ({ size }) => ({ content: [{ type: 'text', text: '0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size) }] }),
);
server.registerTool(
  'sleep',
  { description: 'Sleeps, then answers.', inputSchema: { seconds: z.number() } },
  async ({ seconds }) => {
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return { content: [{ type: 'text', text: 'slept' }] };
  },
);
server.registerTool(
  'crash',
  { description: 'Kills this server with SIGKILL before answering.', inputSchema: {} },
  async () => {
    process.kill(process.pid, 'SIGKILL');
    return { content: [{ type: 'text', text: 'unreachable' }] };
  },
);

process.stdin.on('end', () => {
  if (opts.exitDelay > 0) {
    process.stderr.write(`server ${process.pid}: stdin closed, exiting in ${opts.exitDelay}s\n`);
    setTimeout(() => process.exit(opts.exitCode), opts.exitDelay * 1000);
  }
});

await server.connect(new StdioServerTransport());
