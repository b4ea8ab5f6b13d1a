// sluicectl against the real controller: both are child processes, as an operator runs them.
// Build first (`npx tsc -b`); these tests spawn packages/*/dist through the bins.
import { spawn } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerProcess, freePort, ManagedProcess, repoRoot, sluicectlBin, tempDir, type TempDir } from '@sluice/testing';

const sharedApi = resolve(repoRoot, '../shared/api');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let controller: ControllerProcess;
let data: TempDir;
let work: TempDir;

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // No inherited SLUICE_*/EDITOR: the tests say exactly what sluicectl sees.
  const { SLUICE_SERVER: _s, SLUICE_CONFIG: _c, SLUICE_EDITOR: _e, EDITOR: _ed, ...rest } = process.env;
  return { ...rest, SLUICE_SERVER: controller.url, SLUICE_CONFIG: join(work.path, 'config'), HOME: work.path, ...extra };
}

function ctl(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [sluicectlBin, ...args], { env: options.env ?? baseEnv(), cwd: work.path, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

async function file(name: string, text: string): Promise<string> {
  const path = join(work.path, name);
  await writeFile(path, text);
  return path;
}

const upstream = (name: string, port = 9001, extra = '') => `apiVersion: sluice/v1
kind: Upstream
metadata:
  name: ${name}
spec:
  endpoints:
    - address: 127.0.0.1
      port: ${port}
${extra}`;

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

beforeAll(async () => {
  data = await tempDir('sluicectl-it-data-');
  work = await tempDir('sluicectl-it-work-');
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: data.path });
});

afterAll(async () => {
  await controller?.[Symbol.asyncDispose]();
  await work?.[Symbol.asyncDispose]();
  await data?.[Symbol.asyncDispose]();
});

describe('apply the shared examples', () => {
  it('creates every object, then finds them all unchanged', async () => {
    const first = await ctl(['apply', '-f', sharedApi]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const created = lines(first.stdout);
    expect(created.length).toBeGreaterThanOrEqual(13);
    for (const l of created) expect(l).toMatch(/^[a-z]+\/[-a-z0-9.]+ created$/);
    expect(created).toContain('upstream/shop-v1 created');
    expect(created).toContain('secret/shop-cert created');

    const again = await ctl(['apply', '-f', sharedApi]);
    expect(again.code).toBe(0);
    expect(lines(again.stdout)).toEqual(created.map((l) => l.replace(/ created$/, ' unchanged')));
  });

  it('round-trips: get -o yaml re-applies as unchanged', async () => {
    const got = await ctl(['get', 'listeners,routes,tcproutes,udproutes,upstreams,secrets', '-o', 'yaml']);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain('kind: List');
    const back = await ctl(['apply', '-f', '-'], { stdin: got.stdout });
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    for (const l of lines(back.stdout)) expect(l).toMatch(/ unchanged$/);

    const one = await ctl(['get', 'upstream/shop-v1', '-o', 'yaml']);
    expect(one.stdout).toMatch(/^apiVersion: sluice\/v1\nkind: Upstream\n/);
    expect((await ctl(['apply', '-f', '-'], { stdin: one.stdout })).stdout).toBe('upstream/shop-v1 unchanged\n');
  });

  it('prints tables and describes objects', async () => {
    const table = await ctl(['get', 'upstreams']);
    expect(lines(table.stdout)[0]).toMatch(/^NAME\s+ENDPOINTS\s+POLICY\s+.*AGE$/);
    expect(table.stdout).toMatch(/shop-v1\s+127\.0\.0\.1:9001,127\.0\.0\.1:9002,127\.0\.0\.1:9003\s+WeightedRoundRobin/);
    const wide = await ctl(['get', 'listeners', '-o', 'wide', '-A']);
    expect(lines(wide.stdout)[0]).toMatch(/^NAMESPACE\s+NAME\s+PORT\s+PROTOCOL\s+.*AGE\s+AGENT-SELECTOR$/);
    expect(wide.stdout).toMatch(/default\s+web\s+8080\s+HTTP\s.*pool=edge/);
    const described = await ctl(['describe', 'route', 'shop']);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/^Name:\s+shop\nNamespace:\s+default\n/);
    expect(described.stdout).toContain('Spec:\n  parentRefs:');
  });
});

describe('apply errors', () => {
  it('writes nothing when the 5th object is bad, and names its file, document and field', async () => {
    const good = [1, 2, 3, 4].map((i) => upstream(`atomic-${i}`, 9000 + i)).join('---\n');
    await file('atomic.yaml', `${good}---\n${upstream('atomic-5', 70000)}`);
    const r = await ctl(['apply', '-n', 'atomic', '-f', 'atomic.yaml']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: atomic\.yaml \(document 5, line 44\): upstream\/atomic-5: spec\.endpoints\[0\]\.port: .*65535/m);
    expect(r.stderr).toContain('nothing was applied');
    const listed = await ctl(['get', 'upstreams', '-n', 'atomic']);
    expect(listed).toEqual({ code: 0, stdout: '', stderr: 'No resources found in atomic namespace.\n' });
  });

  it('names the line of malformed YAML and sends nothing', async () => {
    await file('malformed.yaml', `${upstream('m1')}---\napiVersion: sluice/v1\nkind: Upstream\nmetadata:\n  name: [m2\n`);
    const r = await ctl(['apply', '-n', 'malformed', '-f', 'malformed.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: malformed\.yaml:1[2-4]:\d+: /);
    expect((await ctl(['get', 'upstreams', '-n', 'malformed', '-o', 'name'])).stdout).toBe('');
  });

  it('rejects an unknown field', async () => {
    await file('unknown.yaml', upstream('u1', 9001, '  bogus: true\n'));
    const r = await ctl(['apply', '-n', 'unknown', '-f', 'unknown.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown\.yaml \(document 1, line 9\): upstream\/u1: spec(\.bogus)?: unknown field "bogus"/);
  });
});

describe('delete', () => {
  it('deletes, fails on NotFound, and accepts --ignore-not-found', async () => {
    const path = await file('del.yaml', upstream('del-1'));
    expect((await ctl(['apply', '-n', 'del', '-f', path])).code).toBe(0);
    expect(await ctl(['delete', '-n', 'del', 'upstream', 'del-1'])).toEqual({ code: 0, stdout: 'upstream/del-1 deleted\n', stderr: '' });
    const again = await ctl(['delete', '-n', 'del', 'upstream/del-1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: .*del-1.*not found/);
    expect(await ctl(['delete', '-n', 'del', '-f', path, '--ignore-not-found'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});

describe('diff', () => {
  it('exits 1 for a new object, 0 once applied, 1 for a change, >1 on errors', async () => {
    const path = await file('diff.yaml', upstream('diff-1'));
    const fresh = await ctl(['diff', '-n', 'diff', '-f', path]);
    expect(fresh.code).toBe(1);
    expect(fresh.stdout).toContain('+++ merged/upstream/diff/diff-1');
    expect((await ctl(['apply', '-n', 'diff', '-f', path])).code).toBe(0);
    expect(await ctl(['diff', '-n', 'diff', '-f', path])).toEqual({ code: 0, stdout: '', stderr: '' });
    await file('diff.yaml', upstream('diff-1', 9010));
    const changed = await ctl(['diff', '-n', 'diff', '-f', path]);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/^-\s+port: 9001$/m);
    expect(changed.stdout).toMatch(/^\+\s+port: 9010$/m);
    await file('diff-bad.yaml', upstream('diff-1', -3));
    expect((await ctl(['diff', '-n', 'diff', '-f', 'diff-bad.yaml'])).code).toBeGreaterThan(1);
    expect((await ctl(['diff', '-f', 'no-such-file.yaml'])).code).toBeGreaterThan(1);
  });
});

describe('edit', () => {
  async function editorScript(name: string, from: string, to: string): Promise<string> {
    const path = await file(
      name,
      `import { readFileSync, writeFileSync } from 'node:fs';\nconst f = process.argv[2];\nwriteFileSync(f, readFileSync(f, 'utf8').replace(${JSON.stringify(from)}, ${JSON.stringify(to)}));\n`,
    );
    await chmod(path, 0o755);
    return `${process.execPath} ${path}`;
  }

  it('saves a change made by the editor, and keeps the file of an invalid one', async () => {
    expect((await ctl(['apply', '-n', 'edit', '-f', '-'], { stdin: upstream('edit-1') })).code).toBe(0);
    const good = await editorScript('good-editor.mjs', 'port: 9001', 'port: 9111');
    expect(await ctl(['edit', '-n', 'edit', 'upstream', 'edit-1'], { env: baseEnv({ EDITOR: good }) })).toEqual({
      code: 0,
      stdout: 'upstream/edit-1 edited\n',
      stderr: '',
    });
    expect((await ctl(['get', '-n', 'edit', 'upstream', 'edit-1', '-o', 'json'])).stdout).toContain('"port": 9111');

    const noop = await editorScript('noop-editor.mjs', 'no such text', '');
    expect((await ctl(['edit', '-n', 'edit', 'upstream/edit-1'], { env: baseEnv({ SLUICE_EDITOR: noop }) })).stderr).toBe('Edit cancelled, no changes made.\n');

    const bad = await editorScript('bad-editor.mjs', 'port: 9111', 'port: -1');
    const r = await ctl(['edit', '-n', 'edit', 'upstream', 'edit-1'], { env: baseEnv({ EDITOR: bad }) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('spec.endpoints[0].port');
    const kept = /your changes are kept in (\S+)/.exec(r.stderr)?.[1];
    expect(kept).toBeDefined();
    expect(await readFile(kept!, 'utf8')).toContain('port: -1');
    await rm(resolve(kept!, '..'), { recursive: true, force: true });
    expect((await ctl(['get', '-n', 'edit', 'upstream', 'edit-1', '-o', 'json'])).stdout).toContain('"port": 9111');
  });
});

describe('explain', () => {
  it('prints a field of a kind', async () => {
    const r = await ctl(['explain', 'upstream.spec.healthCheck']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^KIND:\s+Upstream\nVERSION:\s+sluice\/v1\n\nFIELD: healthCheck <Object>\n/);
    expect(r.stdout).toMatch(/FIELDS:\n\s+http\t<Object>/);
    expect(await ctl(['explain', 'upstream.spec.foo'])).toEqual({ code: 1, stdout: '', stderr: 'error: field "foo" does not exist\n' });
  });
});

describe('get -w', () => {
  it('prints an event when another process applies a change, and ends on SIGINT', async () => {
    await using watcher = new ManagedProcess(process.execPath, [sluicectlBin, 'get', 'upstreams', '-n', 'watch', '-w', '-o', 'name'], { env: baseEnv() });
    // An empty namespace prints nothing, so wait until the watch is established by
    // applying and waiting for the first event, then make a second change.
    expect((await ctl(['apply', '-n', 'watch', '-f', '-'], { stdin: upstream('w-1') })).code).toBe(0);
    await watcher.waitForLine((l) => l === 'upstream/w-1');
    expect((await ctl(['apply', '-n', 'watch', '-f', '-'], { stdin: upstream('w-2') })).code).toBe(0);
    await watcher.waitForLine((l) => l === 'upstream/w-2');
    const exit = await watcher.stop('SIGINT');
    expect(exit.code).toBe(0);
    expect(watcher.stderrLines).toEqual([]);
  });
});

describe('config and connection errors', () => {
  it('uses contexts from the config file', async () => {
    const env = baseEnv();
    delete env['SLUICE_SERVER'];
    expect((await ctl(['config', 'set-context', 'it', '--server', controller.url, '--namespace', 'ctx'], { env })).stdout).toBe('Context "it" created.\n');
    expect((await ctl(['config', 'use-context', 'it'], { env })).code).toBe(0);
    expect((await ctl(['config', 'current-context'], { env })).stdout).toBe('it\n');
    expect((await ctl(['apply', '-f', '-', '-o', 'name'], { env, stdin: upstream('ctx-1') })).stdout).toBe('upstream/ctx-1\n');
    expect((await ctl(['get', 'upstreams', '-n', 'ctx', '-o', 'name'])).stdout).toBe('upstream/ctx-1\n');
    const contexts = await ctl(['config', 'get-contexts'], { env });
    expect(lines(contexts.stdout)[1]).toMatch(/^\*\s+it\s+http:\/\/127\.0\.0\.1:\d+\s+ctx$/);
    expect((await ctl(['config', 'delete-context', 'it'], { env })).code).toBe(0);
  });

  it('explains an unreachable server and exits 1', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const r = await ctl(['get', 'upstreams'], { env: baseEnv({ SLUICE_SERVER: nobody }) });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: cannot reach the Sluice controller at ${nobody}: connection refused (is it running? set --server or SLUICE_SERVER)\n`,
    });
    const version = await ctl(['version'], { env: baseEnv({ SLUICE_SERVER: nobody }) });
    expect(version.code).toBe(1);
    expect(version.stdout).toMatch(/^Client Version: /);
  });

  it('prints the server version', async () => {
    const r = await ctl(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Client Version: \S+\nServer Version: \S+ \(store: embedded\)\n$/);
  });
});
