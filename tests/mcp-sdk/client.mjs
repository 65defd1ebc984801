// An MCP client built with the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json / package-lock.json), for
// tapedeck's end-to-end tests (tests/tests/mcp_clients.rs).
//
// It runs --sessions concurrent sessions. Session i launches its server with
// the SDK's StdioClientTransport: the command is --command (a JSON array),
// cycled over when --command is repeated, with `{i}` replaced in every
// element. Each session connects (the `initialize` handshake: this SDK offers
// 2025-11-25 and knows no other era), lists the tools, calls `echo` --calls
// times and `big` once (--big bytes), checks the answers, then closes the
// client: the SDK's own shutdown sequence (end the server's stdin, wait up to
// 2 s for it to close, SIGTERM the process, wait up to 2 s, SIGKILL).
//
// The launched process is watched from the inside (the transport's child
// process): how it ended (exit code or signal) and when, relative to the
// start of the close.
//
// Prints one JSON object on stdout:
//   {"sdk": "typescript", "sdk_version", "sessions", "ok", "failed",
//    "per_session": [{"index", "command", "ok", "error", "protocol_version",
//                     "calls", "sent", "received", "seconds", "close_seconds", "pid",
//                     "exit_code", "exit_signal", "exited_after",
//                     "signalled", "escalated"}]}
// `escalated` says whether the process was still running 2 s after its stdin
// was ended (so the SDK sent it SIGTERM). Exit status 0 when every session was
// ok, else 1.

import fs from 'node:fs';
import process from 'node:process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

function parseArgs(argv) {
  const opts = { sessions: 1, calls: 3, big: 100000, commands: [], env: {}, cwd: undefined, timeout: 60 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--sessions': opts.sessions = Number(value); break;
      case '--calls': opts.calls = Number(value); break;
      case '--big': opts.big = Number(value); break;
      case '--command': opts.commands.push(JSON.parse(value)); break;
      case '--env': {
        const at = value.indexOf('=');
        opts.env[value.slice(0, at)] = value.slice(at + 1);
        break;
      }
      case '--cwd': opts.cwd = value; break;
      case '--timeout': opts.timeout = Number(value); break;
      default:
        process.stderr.write(`unknown option: ${argv[i]}\n`);
        process.exit(2);
    }
    i++;
  }
  if (opts.commands.length === 0) {
    process.stderr.write('--command is required\n');
    process.exit(2);
  }
  return opts;
}

const sdkVersion = JSON.parse(
  fs.readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url)),
).version;

function textOf(result) {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content).slice(0, 200)}`);
  return result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');
}

function withTimeout(promise, seconds, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${seconds}s`)), seconds * 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runSession(index, opts) {
  const command = opts.commands[index % opts.commands.length].map((p) => p.replaceAll('{i}', String(index)));
  const record = {
    index, command, ok: false, error: null, protocol_version: null, calls: 0, sent: 0, received: 0,
    pid: null, exit_code: null, exit_signal: null, exited_after: null,
  };
  const started = performance.now();
  let closing = null;
  let exited = null;
  const transport = new StdioClientTransport({
    command: command[0], args: command.slice(1), env: opts.env, cwd: opts.cwd, stderr: 'inherit',
  });
  // Count what crosses the wire: every message the transport writes to the
  // launched process, and every one it reads back (its line buffer's parsed
  // messages): what a recording of the session must hold. Note the
  // negotiated version from the handshake's answer.
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    record.sent++;
    return send(message, options);
  };
  const readMessage = transport._readBuffer.readMessage.bind(transport._readBuffer);
  transport._readBuffer.readMessage = () => {
    const message = readMessage();
    if (message !== null) {
      record.received++;
      if (message?.result?.protocolVersion && record.protocol_version === null) {
        record.protocol_version = message.result.protocolVersion;
      }
    }
    return message;
  };
  const client = new Client({ name: 'tapedeck-test-typescript-client', version: '1.0.0' });
  try {
    await withTimeout((async () => {
      await client.connect(transport);
      // The transport's child process (a private field: watched, not touched).
      const child = transport._process;
      record.pid = child.pid;
      exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          record.exit_code = code;
          record.exit_signal = signal;
          if (closing !== null) record.exited_after = Number(((performance.now() - closing) / 1000).toFixed(3));
          resolve();
        });
      });
      const tools = await client.listTools();
      const names = new Set(tools.tools.map((t) => t.name));
      if (!names.has('echo') || !names.has('big')) throw new Error(`tools/list lacks echo or big: ${[...names]}`);
      for (let k = 0; k < opts.calls; k++) {
        const text = `session ${index} call ${k}`;
        const got = textOf(await client.callTool({ name: 'echo', arguments: { text } }));
        if (got !== text) throw new Error(`echo returned ${JSON.stringify(got.slice(0, 80))}, not ${JSON.stringify(text)}`);
        record.calls++;
      }
      const got = textOf(await client.callTool({ name: 'big', arguments: { size: opts.big } }));
      if (got.length !== opts.big) throw new Error(`big returned ${got.length} bytes, not ${opts.big}`);
      record.calls++;
      closing = performance.now();
      // The SDK's shutdown sequence (Client.close -> StdioClientTransport.close).
      await client.close();
      record.close_seconds = Number(((performance.now() - closing) / 1000).toFixed(3));
      // After a SIGKILL the SDK does not wait for the exit; do, briefly.
      await withTimeout(exited, 5, 'waiting for the launched process to exit after close');
    })(), opts.timeout, `session ${index}`);
    record.ok = true;
  } catch (e) {
    record.error = String(e && e.stack ? e.stack : e).slice(0, 2000);
    try { await client.close(); } catch { /* reported above */ }
  } finally {
    record.seconds = Number(((performance.now() - started) / 1000).toFixed(3));
    record.signalled = record.exit_signal !== null;
    // The SDK sends SIGTERM only if the process has not exited 2 s after its
    // stdin was ended.
    record.escalated = record.exited_after === null ? closing !== null : record.exited_after >= 2.0;
  }
  return record;
}

const opts = parseArgs(process.argv.slice(2));
const results = await Promise.all(Array.from({ length: opts.sessions }, (_, i) => runSession(i, opts)));
const ok = results.filter((r) => r.ok).length;
process.stdout.write(JSON.stringify({
  sdk: 'typescript',
  sdk_version: sdkVersion,
  sessions: results.length,
  ok,
  failed: results.length - ok,
  per_session: results,
}) + '\n');
process.exitCode = ok === results.length ? 0 : 1;
