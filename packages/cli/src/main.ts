// The sluicectl entry point (bin/sluicectl.js imports the built copy). It wires the real
// process into the CLI and is the only place that turns outcomes into exit statuses.
import { runCli } from './cli.js';
import { EXIT_INTERRUPTED, exitCodeFor } from './exit-code.js';
import type { Io } from './io.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

const interrupt = new AbortController();
let holds = 0;
// Without a hold, SIGINT ends the process as usual; with one (watch, editor), it only
// aborts `interrupted` so the command can finish cleanly.
process.on('SIGINT', () => {
  if (holds > 0) {
    interrupt.abort();
    return;
  }
  process.exit(EXIT_INTERRUPTED);
});

// `sluicectl get ... | head` closes our stdout early; that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const io: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  readStdin,
  env: process.env,
  cwd: process.cwd(),
  interrupted: interrupt.signal,
  holdInterrupts: () => {
    holds++;
    let released = false;
    return () => {
      if (!released) holds--;
      released = true;
    };
  },
};

const result = await runCli(process.argv.slice(2), io);
process.exitCode = exitCodeFor(result, result.command);
