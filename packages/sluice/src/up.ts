import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseYamlDocuments } from '@sluice/api';

export const UP_USAGE = `Usage: sluice up [flags]

Runs a whole Sluice on this machine: a controller on the embedded store, one agent, three
demo backends that answer with their own name, and the quickstart configuration applied.
Ctrl-C stops everything.

Flags:
  --data-dir DIR   the controller's store and the logs (default: ./.sluice-data)
  -f, --file FILE  configuration to apply (default: examples/quickstart.yaml)
  --no-backends    don't start the demo backends on 127.0.0.1:9001-9003
  -h, --help       show this help
`;

const BACKENDS = [
  { name: 'demo-1', port: 9001 },
  { name: 'demo-2', port: 9002 },
  { name: 'demo-3', port: 9003 },
];
const ADMIN = '127.0.0.1:9080';
const GRPC = '127.0.0.1:9081';
const AGENT_ADMIN = '127.0.0.1:9180';

const sluiceBin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));
const defaultFile = fileURLToPath(new URL('../../../examples/quickstart.yaml', import.meta.url));

interface Component {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
  /** Resolves with the first stdout line containing `text`; rejects if the process exits first. */
  waitFor(text: string): Promise<string>;
}

/** `sluice up`: the quickstart. Returns the exit code. */
export async function runUp(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'data-dir': { type: 'string', default: '.sluice-data' },
      file: { type: 'string', short: 'f', default: defaultFile },
      'no-backends': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(UP_USAGE);
    return 0;
  }
  const dataDir = resolve(values['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const documents = readConfig(values.file);

  const servers = values['no-backends'] ? [] : await Promise.all(BACKENDS.map((b) => startDemoBackend(b.name, b.port)));
  const components: Component[] = [];
  const stopAll = async () => {
    for (const c of [...components].reverse()) {
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
      await c.exited;
    }
    await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  };

  try {
    const controller = startComponent('controller', ['controller', '--store', 'embedded', '--data-dir', dataDir, '--admin-addr', ADMIN, '--grpc-addr', GRPC], dataDir);
    components.push(controller);
    await controller.waitFor('"gRPC discovery listening"');
    // One worker: each worker balances on its own, and the demo should show a clean rotation.
    const agent = startComponent('agent', ['agent', '--controller', GRPC, '--id', 'quickstart', '--admin-addr', AGENT_ADMIN, '--workers', '1'], dataDir);
    components.push(agent);
    await agent.waitFor('"agent admin listening"');

    const response = await fetch(`http://${ADMIN}/apis/sluice/v1/apply`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'sluice/v1', kind: 'List', items: documents }),
    });
    const result = (await response.json()) as { message?: string; items?: { kind: string; name: string; action: string }[] };
    if (!response.ok) throw new Error(`applying ${values.file} failed: ${result.message ?? response.status}`);
    await agent.waitFor('"agent ready"');
    process.stdout.write(banner(dataDir, result.items ?? []));
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAll();
    return 1;
  }

  // Run until Ctrl-C, or until a component dies (then say which and where its log is).
  const outcome = await Promise.race([
    new Promise<string>((done) => {
      process.once('SIGINT', () => done('signal'));
      process.once('SIGTERM', () => done('signal'));
    }),
    ...components.map((c) => c.exited.then(() => c.name)),
  ]);
  await stopAll();
  if (outcome === 'signal') {
    process.stdout.write('\nSluice stopped.\n');
    return 0;
  }
  const died = components.find((c) => c.name === outcome);
  process.stderr.write(`error: the ${outcome} stopped unexpectedly; see ${died?.log ?? dataDir}\n`);
  return 1;
}

function readConfig(file: string): unknown[] {
  const parsed = parseYamlDocuments(readFileSync(file, 'utf8'), file);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.docs.map((d) => d.object);
}

/** A `sluice <component>` child with its JSON log lines written to `<dataDir>/<name>.log`. */
function startComponent(name: string, args: string[], dataDir: string): Component {
  const log = join(dataDir, `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const child = spawn(process.execPath, [sluiceBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(out, { end: false });
  const lines: string[] = [];
  const waiters: { text: string; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    out.write(`${line}\n`);
    if (lines.length < 200) lines.push(line);
    for (const w of waiters.filter((w) => line.includes(w.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return {
    name,
    child,
    log,
    exited,
    waitFor(text) {
      const seen = lines.find((l) => l.includes(text));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolveLine, reject) => {
        waiters.push({ text, resolve: resolveLine });
        void exited.then((code) => reject(new Error(`the ${name} exited (code ${code}) while starting; see ${log}`)));
      });
    },
  };
}

/** A demo backend: answers every request with its name, so a user sees the balancing. */
function startDemoBackend(name: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name}\n`);
  });
  return new Promise((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      fail(new Error(error.code === 'EADDRINUSE' ? `port ${port} is in use (demo backend ${name}); free it or run sluice up --no-backends` : error.message));
    });
    server.listen(port, '127.0.0.1', () => done(server));
  });
}

function banner(dataDir: string, items: { kind: string; name: string; action: string }[]): string {
  return `
Sluice is up: a controller (embedded store), one agent and three demo backends.
Applied: ${items.map((i) => `${i.kind.toLowerCase()}/${i.name} ${i.action}`).join(', ')}

  proxy        http://127.0.0.1:8080      (agent "quickstart")
  admin API    http://${ADMIN}      (controller)
  agent admin  http://${AGENT_ADMIN}/config_dump

Try:
  curl http://127.0.0.1:8080/                       # demo-1, demo-2, demo-3 in turn
  curl -H 'x-canary: true' http://127.0.0.1:8080/   # always demo-3
  npx sluicectl get routes,upstreams
  npx sluicectl get agents
  npx sluicectl describe route demo
  npx sluicectl edit upstream demo                  # change a weight; traffic follows at once

Logs: ${join(dataDir, 'controller.log')}, ${join(dataDir, 'agent.log')}
Ctrl-C stops everything.
`;
}
