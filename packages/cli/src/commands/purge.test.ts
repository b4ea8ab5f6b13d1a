import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../test-support/run.js';

// sluicectl purge against a stand-in admin API on a real socket: it records what was asked
// and answers like the controller (the endpoint itself is tested in controller/admin/purge.test.ts).
let server: Server;
let url: string;
const calls: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    const name = /\/routes\/([^/]+)\/purge$/.exec(req.url ?? '')?.[1];
    if (name === 'missing' || name === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: `routes "${name}" not found` }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'sluice/v1', kind: 'Route', metadata: { name, annotations: { 'sluice.io/cache-purge': 'x' } }, spec: {} }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const run = (argv: string[]) => runInProcess(argv, { env: { SLUICE_SERVER: url, SLUICE_CONFIG: '/nonexistent/sluice-config', HOME: '/nonexistent' } });

describe('sluicectl purge', () => {
  it('posts to the route purge endpoint in the namespace given, and names what it purged', async () => {
    calls.length = 0;
    expect(await run(['purge', 'route', 'shop', '-n', 'store'])).toEqual({ code: 0, stdout: 'route/shop purged\n', stderr: '' });
    expect(await run(['purge', 'route/a', 'routes/b', '-o', 'name'])).toEqual({ code: 0, stdout: 'route/a\nroute/b\n', stderr: '' });
    expect(calls).toEqual([
      'POST /apis/sluice/v1/namespaces/store/routes/shop/purge',
      'POST /apis/sluice/v1/namespaces/default/routes/a/purge',
      'POST /apis/sluice/v1/namespaces/default/routes/b/purge',
    ]);
  });

  it('fails on a missing route, other kinds and no name', async () => {
    const missing = await run(['purge', 'route', 'missing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: routes "missing" not found\n');
    const upstream = await run(['purge', 'upstream', 'shop']);
    expect(upstream.code).not.toBe(0);
    expect(upstream.stderr).toContain('only routes have a cache to purge');
    expect((await run(['purge', 'route'])).stderr).toContain('purge needs a NAME');
  });

  it('shows examples in --help', async () => {
    const help = await run(['purge', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('sluicectl purge route shop');
  });
});
