// In-process command tests: sluicectl's own code runs in this process (test-support/run.ts),
// against a real `sluice controller` child process. Cross-process tests, where sluicectl is a
// child process too, are in test/cli.
//
// One controller serves the whole file; each test works in its own namespace and directory.
// Only Upstreams are written here: the controller writes status to none of them, so the store
// revision moves only when a test writes.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ControllerProcess, startEtcd, tempDir, type TempDir } from '@sluice/testing';
import { runInProcess, type RunOptions } from './test-support/run.js';

let controller: ControllerProcess;
let data: TempDir;
let work: TempDir;
let dir: string;
let env: Record<string, string>;
/** This test's namespace. */
let ns: string;
let tests = 0;

beforeAll(async () => {
  data = await tempDir('sluicectl-cli-data-');
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: data.path });
});
afterAll(async () => {
  await controller?.[Symbol.asyncDispose]();
  await data?.[Symbol.asyncDispose]();
});

beforeEach(async () => {
  ns = `cli-${++tests}`;
  work = await tempDir('sluicectl-cli-');
  dir = work.path;
  env = { SLUICE_SERVER: controller.url, SLUICE_CONFIG: join(dir, 'config'), HOME: dir };
});
afterEach(async () => {
  await work[Symbol.asyncDispose]();
});

/** sluicectl with exactly the arguments given. */
const runBare = (argv: string[], options: RunOptions = {}) => runInProcess(argv, { env, cwd: dir, ...options });
/** sluicectl in this test's namespace (`-n`). */
const run = (argv: string[], options: RunOptions = {}) => runBare(['-n', ns, ...argv], options);

const upstream = (name: string, port = 9001, extra = '') => `apiVersion: sluice/v1
kind: Upstream
metadata:
  name: ${name}
spec:
  endpoints:
    - address: 127.0.0.1
      port: ${port}
${extra}`;

async function file(name: string, text: string): Promise<string> {
  await writeFile(join(dir, name), text);
  return name;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** GET on the admin API, as any client could. */
async function api(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${controller.url}${path}`);
  return { status: response.status, body: await response.json() };
}

/** The store revision: a list's `metadata.resourceVersion`, which every write moves. */
async function storeRevision(): Promise<string> {
  const { status, body } = await api('/apis/sluice/v1/upstreams');
  expect(status).toBe(200);
  return body.metadata.resourceVersion;
}

/** Names of the Upstreams stored in `namespace`. */
async function upstreamsIn(namespace: string): Promise<string[]> {
  const { status, body } = await api(`/apis/sluice/v1/namespaces/${namespace}/upstreams`);
  expect(status).toBe(200);
  return body.items.map((o: { metadata: { name: string } }) => o.metadata.name);
}

describe('apply', () => {
  it('creates, then reports unchanged and configured', async () => {
    await file('u.yaml', `${upstream('a')}---\n${upstream('b')}`);
    expect(await run(['apply', '-f', 'u.yaml'])).toEqual({ code: 0, stdout: 'upstream/a created\nupstream/b created\n', stderr: '' });
    expect((await run(['apply', '-f', 'u.yaml'])).stdout).toBe('upstream/a unchanged\nupstream/b unchanged\n');
    await file('u.yaml', `${upstream('a', 9999)}---\n${upstream('b')}`);
    expect((await run(['apply', '-f', 'u.yaml', '--dry-run=server'])).stdout).toBe('upstream/a configured (server dry run)\nupstream/b unchanged (server dry run)\n');
    expect((await run(['apply', '-f', 'u.yaml'])).stdout).toBe('upstream/a configured\nupstream/b unchanged\n');
  });

  it('maps every cause of a 422 to file, document and line, and writes nothing', async () => {
    await file('one.yaml', upstream('a'));
    await file('two.yaml', `${upstream('b')}---\n${upstream('c', 70000)}---\n${upstream('d', 1, '  bogus: 1\n')}`);
    const before = await storeRevision();
    const r = await run(['apply', '-f', 'one.yaml', '-f', 'two.yaml']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^error: two\.yaml \(document 2, line 17\): upstream\/c: spec\.endpoints\[0\]\.port: /);
    expect(lines[1]).toMatch(/^error: two\.yaml \(document 3, line 27\): upstream\/d: spec(\.bogus)?: unknown field "bogus"/);
    expect(lines.at(-1)).toBe('error: nothing was applied (an apply is all or nothing)');
    expect(await upstreamsIn(ns)).toEqual([]);
    expect(await storeRevision()).toBe(before);
  });

  it('fails on malformed YAML before sending anything', async () => {
    await file('bad.yaml', 'apiVersion: sluice/v1\nkind: Upstream\nmetadata: {name: [x\n');
    const before = await storeRevision();
    const r = await run(['apply', '-f', 'bad.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: bad\.yaml:\d+:\d+: /);
    expect(await upstreamsIn(ns)).toEqual([]);
    expect(await storeRevision()).toBe(before);
  });

  it('sets the namespace from -n and prints objects with -o yaml', async () => {
    const r = await runBare(['apply', '-n', ns, '-f', '-', '-o', 'yaml'], { stdin: upstream('a') });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^apiVersion: sluice\/v1\nkind: Upstream\n/);
    expect(r.stdout).toContain(`namespace: ${ns}`);
    expect(await upstreamsIn(ns)).toEqual(['a']);
  });
});

describe('top endpoints', () => {
  it('lists every endpoint of every upstream, with unknown figures before any traffic', async () => {
    await file('u.yaml', `${upstream('a')}---\n${upstream('b', 9002)}`);
    expect((await run(['apply', '-f', 'u.yaml'])).code).toBe(0);
    const r = await run(['top', 'endpoints']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`UPSTREAM   ENDPOINT         WEIGHT   P50   P99   ERRORS   REQUESTS
a          127.0.0.1:9001   1        -     -     -        -
b          127.0.0.1:9002   1        -     -     -        -
`);
    expect((await runBare(['top', 'endpoints', '-n', ns])).stdout).toBe(r.stdout);
    const all = await runBare(['top', 'endpoints', '-A']);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE +UPSTREAM +ENDPOINT +WEIGHT +P50 +P99 +ERRORS +REQUESTS$/);
    expect(all.stdout).toMatch(new RegExp(`${ns} +a +127\\.0\\.0\\.1:9001 +1 +- +- +- +-`));
    const described = await run(['describe', 'upstream', 'a']);
    expect(described.stdout).not.toContain('Endpoints:');
  });

  it('says "No resources found" on stderr in an empty namespace', async () => {
    expect(await run(['top', 'endpoints'])).toEqual({ code: 0, stdout: '', stderr: `No resources found in ${ns} namespace.\n` });
  });
});

describe('get', () => {
  beforeEach(async () => {
    await file('u.yaml', `${upstream('a')}---\n${upstream('b', 9002)}`);
    expect((await run(['apply', '-f', 'u.yaml'])).code).toBe(0);
  });

  it('prints a table, names and KIND/NAME forms', async () => {
    const table = await run(['get', 'upstreams']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME {3}ENDPOINTS {8}POLICY {7}AGE$/);
    expect(table.stdout).toContain('b      127.0.0.1:9002');
    expect((await run(['get', 'us', '-o', 'name'])).stdout).toBe('upstream/a\nupstream/b\n');
    expect((await run(['get', 'upstream/b', '-o', 'name'])).stdout).toBe('upstream/b\n');
  });

  it('-o yaml of one object is the object; of several a List; either re-applies unchanged', async () => {
    const one = await run(['get', 'upstream', 'a', '-o', 'yaml']);
    expect(one.stdout).toMatch(/^apiVersion: sluice\/v1\nkind: Upstream\n/);
    await file('one.yaml', one.stdout);
    expect((await run(['apply', '-f', 'one.yaml'])).stdout).toBe('upstream/a unchanged\n');
    const all = await run(['get', 'upstreams', '-o', 'yaml']);
    expect(all.stdout).toContain('kind: List');
    await file('back.yaml', all.stdout);
    expect((await run(['apply', '-f', 'back.yaml'])).stdout).toBe('upstream/a unchanged\nupstream/b unchanged\n');
  });

  it('says "No resources found" on stderr', async () => {
    expect(await run(['get', 'routes'])).toEqual({ code: 0, stdout: '', stderr: `No resources found in ${ns} namespace.\n` });
  });

  it('reports a missing name and exits 1, still printing the others', async () => {
    const r = await run(['get', 'upstream', 'a', 'nope', '-o', 'name']);
    expect(r).toEqual({ code: 1, stdout: 'upstream/a\n', stderr: 'error: upstreams "nope" not found\n' });
  });

  it('-w prints changes as they happen and ends cleanly when interrupted', async () => {
    const stop = new AbortController();
    let seen = '';
    let resolveLine: () => void = () => undefined;
    const sawC = new Promise<void>((resolve) => (resolveLine = resolve));
    const watching = run(['get', 'upstreams', '-w', '-o', 'name'], {
      interrupted: stop.signal,
      onStdout: (t) => {
        seen += t;
        if (seen.includes('upstream/c')) resolveLine();
      },
    });
    // Wait for the initial listing before the change.
    await expect.poll(() => seen).toContain('upstream/b');
    await file('c.yaml', upstream('c'));
    expect((await run(['apply', '-f', 'c.yaml'])).code).toBe(0);
    await sawC;
    stop.abort();
    const r = await watching;
    expect(r.code).toBe(0);
    // c appears once for its creation, and again for each status update the controller writes.
    expect(r.stdout).toMatch(/^upstream\/a\nupstream\/b\n(upstream\/c\n)+$/);
  });
});

describe('delete', () => {
  it('deletes, and NotFound is an error unless --ignore-not-found', async () => {
    await file('u.yaml', upstream('a'));
    expect((await run(['apply', '-f', 'u.yaml'])).code).toBe(0);
    expect(await run(['delete', 'upstream', 'a', '--dry-run=server'])).toMatchObject({ code: 0, stdout: 'upstream/a deleted (server dry run)\n' });
    expect(await upstreamsIn(ns)).toEqual(['a']);
    expect(await run(['delete', 'upstream', 'a'])).toMatchObject({ code: 0, stdout: 'upstream/a deleted\n' });
    expect(await upstreamsIn(ns)).toEqual([]);
    expect(await run(['delete', 'upstream', 'a'])).toEqual({ code: 1, stdout: '', stderr: 'error: upstreams "a" not found\n' });
    expect(await run(['delete', '-f', 'u.yaml', '--ignore-not-found'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});

describe('diff', () => {
  it('exits 1 with a unified diff for changes, 0 when the same, 2 on errors', async () => {
    await file('u.yaml', upstream('a'));
    const created = await run(['diff', '-f', 'u.yaml']);
    expect(created.code).toBe(1);
    expect(created.stdout).toContain(`--- live/upstream/${ns}/a\n+++ merged/upstream/${ns}/a\n@@ -0,0 +1,`);
    expect((await run(['apply', '-f', 'u.yaml'])).code).toBe(0);
    expect(await run(['diff', '-f', 'u.yaml'])).toEqual({ code: 0, stdout: '', stderr: '' });
    await file('u.yaml', upstream('a', 9005));
    const changed = await run(['diff', '-f', 'u.yaml']);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain('-      port: 9001\n+      port: 9005\n');
    await file('bad.yaml', upstream('a', -1));
    expect((await run(['diff', '-f', 'bad.yaml'])).code).toBe(2);
    expect((await run(['diff', '-f', 'missing.yaml'])).code).toBe(2);
  });
});

describe('edit', () => {
  async function editor(name: string, script: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `#!/usr/bin/env node\n${script}`);
    await chmod(path, 0o755);
    return path;
  }

  beforeEach(async () => {
    await file('u.yaml', upstream('a'));
    expect((await run(['apply', '-f', 'u.yaml'])).code).toBe(0);
  });

  it('saves a change made in the editor', async () => {
    const ed = await editor('ed.mjs', `import {readFileSync, writeFileSync} from 'node:fs'; const f = process.argv[2]; writeFileSync(f, readFileSync(f, 'utf8').replace('port: 9001', 'port: 9100'));`);
    const r = await run(['edit', 'upstream', 'a'], { env: { ...env, EDITOR: ed } });
    expect(r).toEqual({ code: 0, stdout: 'upstream/a edited\n', stderr: '' });
    expect((await run(['get', 'upstream', 'a', '-o', 'json'])).stdout).toContain('"port": 9100');
  });

  it('cancels when nothing changed', async () => {
    const ed = await editor('noop.mjs', '');
    const before = await storeRevision();
    expect(await run(['edit', 'upstream/a'], { env: { ...env, SLUICE_EDITOR: ed, EDITOR: 'false' } })).toEqual({
      code: 0,
      stdout: '',
      stderr: 'Edit cancelled, no changes made.\n',
    });
    expect(await storeRevision()).toBe(before);
  });

  it('keeps the file and names it when the result is invalid', async () => {
    const ed = await editor('bad.mjs', `import {readFileSync, writeFileSync} from 'node:fs'; const f = process.argv[2]; writeFileSync(f, readFileSync(f, 'utf8').replace('port: 9001', 'port: -5'));`);
    const r = await run(['edit', 'upstream', 'a'], { env: { ...env, EDITOR: ed } });
    expect(r.code).toBe(1);
    const kept = /your changes are kept in (\S+)/.exec(r.stderr)?.[1];
    expect(kept).toBeDefined();
    expect(await readFile(kept!, 'utf8')).toContain('port: -5');
    expect(r.stderr).toContain('spec.endpoints[0].port');
    await rm(join(kept!, '..'), { recursive: true, force: true });
    expect((await run(['get', 'upstream', 'a', '-o', 'json'])).stdout).toContain('"port": 9001');
  });

  it('reports a concurrent change as a conflict', async () => {
    // The "editor" changes the object through the API before saving its own edit.
    const ed = await editor(
      'race.mjs',
      `import {readFileSync, writeFileSync} from 'node:fs'; const f = process.argv[2];
const url = process.env.SLUICE_SERVER + '/apis/sluice/v1/namespaces/${ns}/upstreams/a';
const obj = await (await fetch(url)).json();
obj.spec.endpoints[0].port = 9200;
const put = await fetch(url, {method: 'PUT', headers: {'content-type': 'application/json'}, body: JSON.stringify(obj)});
if (!put.ok) throw new Error('PUT ' + put.status + ': ' + (await put.text()));
writeFileSync(f, readFileSync(f, 'utf8').replace('port: 9001', 'port: 9100'));`,
    );
    const r = await run(['edit', 'upstream', 'a'], { env: { ...env, EDITOR: ed } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('was changed by someone else');
    const kept = /your changes are kept in (\S+)/.exec(r.stderr)?.[1];
    expect(kept).toBeDefined();
    await rm(join(kept!, '..'), { recursive: true, force: true });
    // The other writer's change stands.
    expect((await run(['get', 'upstream', 'a', '-o', 'json'])).stdout).toContain('"port": 9200');
  });
});

describe('errors and other commands', () => {
  it('explains a field path', async () => {
    const r = await run(['explain', 'upstream.spec.healthCheck']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('FIELD: healthCheck <Object>');
    expect(await run(['explain', 'upstream.spec.foo'])).toEqual({ code: 1, stdout: '', stderr: 'error: field "foo" does not exist\n' });
  });

  it('prints the connection-refused message', async () => {
    // A controller of its own, so that stopping it leaves the shared one alone.
    await using stoppedData = await tempDir('sluicectl-cli-stopped-');
    await using stopped = await ControllerProcess.start({ store: 'embedded', dataDir: stoppedData.path });
    await stopped.stop();
    const r = await run(['get', 'upstreams'], { env: { ...env, SLUICE_SERVER: stopped.url } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: cannot reach the Sluice controller at ${stopped.url}: connection refused (is it running? set --server or SLUICE_SERVER)\n`);
  });

  it('prints the 503 message naming the store', async () => {
    await using etcd = await startEtcd();
    await using onEtcd = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint });
    await etcd.stop();
    const r = await run(['get', 'upstreams'], { env: { ...env, SLUICE_SERVER: onEtcd.url } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^error: etcd at ${escapeRegExp(etcd.endpoint)} unavailable: .+\\n$`));
  });

  it('prints client and server versions', async () => {
    const { body } = await api('/version');
    const r = await run(['version']);
    expect(r.stdout).toMatch(new RegExp(`^Client Version: \\S+\\nServer Version: ${escapeRegExp(body.version)} \\(store: embedded\\)\\n$`));
  });

  it('manages contexts', async () => {
    expect((await runBare(['config', 'set-context', 'local', '--server', controller.url, '--namespace', ns])).stdout).toBe('Context "local" created.\n');
    expect((await runBare(['config', 'use-context', 'local'])).stdout).toBe('Switched to context "local".\n');
    expect((await runBare(['config', 'current-context'])).stdout).toBe('local\n');
    const contexts = await runBare(['config', 'get-contexts']);
    expect(contexts.stdout).toMatch(new RegExp(`^CURRENT {3}NAME {4}SERVER +NAMESPACE\\n\\* {9}local {3}http://127\\.0\\.0\\.1:\\d+ {3}${ns}\\n$`));
    // The context's namespace is used when -n is absent.
    const applied = await runBare(['apply', '-f', '-', '-o', 'name'], { stdin: upstream('a'), env: { SLUICE_CONFIG: env['SLUICE_CONFIG']!, HOME: dir } });
    expect(applied.stdout).toBe('upstream/a\n');
    expect((await api(`/apis/sluice/v1/namespaces/${ns}/upstreams/a`)).status).toBe(200);
    expect((await runBare(['config', 'use-context', 'nope'])).stderr).toBe('error: no context exists with the name: "nope"\n');
    expect((await runBare(['config', 'delete-context', 'local'])).code).toBe(0);
    expect((await runBare(['config', 'view'])).stdout).toBe('current-context: ""\ncontexts: []\n');
  });

  it('rejects bad flags with a usage error', async () => {
    const r = await run(['get', 'upstreams', '-o', 'table']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'error: unable to match a printer suitable for the output format "table", allowed formats are: json,name,wide,yaml\n' });
    expect((await run(['get', 'pods'])).stderr).toContain('error: unknown resource type "pods"');
  });

  it('prints completion scripts', async () => {
    const bash = await run(['completion', 'bash']);
    expect(bash.stdout).toContain('complete -o default -F _sluicectl sluicectl');
    expect(bash.stdout).toContain('upstreams upstream us');
    expect((await run(['completion', 'zsh'])).stdout).toContain('bashcompinit');
  });
});
