#!/usr/bin/env node
// tickfan command line: `serve` (with an optional demo feed), `sub` (console
// subscriber), `pub` (one publish), `req` (one request), `serve-echo` (a
// responder to try request-reply with), `demo-orders` (the demo order
// service), `token` (mint a connection token), `bench` (benchmarks).

import { NativeUwsMissingError, OptionError } from './server/index.js';
import { pub, req, serveEcho, sub } from './cli/client-commands.js';
import { serve } from './cli/serve.js';
import { demoOrders } from './cli/demo-orders.js';
import { token } from './cli/token-command.js';
import { COMMAND_HELP, HELP, commandHelp, described, fail, type Command } from './cli/usage.js';

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'sub':
      return sub(rest);
    case 'pub':
      return pub(rest);
    case 'req':
      return req(rest);
    case 'serve-echo':
      return serveEcho(rest);
    case 'demo-orders':
      return demoOrders(rest);
    case 'token':
      return token(rest);
    case 'bench': {
      const { runBenchCli } = await import('./bench-cli.js');
      return runBenchCli(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help': {
      const topic = rest[0];
      if (topic && topic !== 'serve' && topic in COMMAND_HELP) return void console.log(commandHelp(topic as Exclude<Command, 'serve'>));
      console.log(HELP);
      return;
    }
    default:
      fail(`unknown command "${cmd}"\n\n${HELP}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof NativeUwsMissingError || err instanceof OptionError) fail(err.message, 1);
  fail(described(err), 1);
});

