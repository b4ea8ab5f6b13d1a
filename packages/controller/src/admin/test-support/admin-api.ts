import { tempDir } from '@sluice/testing';
import { silentLogger } from '../../logger.js';
import { ResourceService } from '../../resources/resource-service.js';
import { EmbeddedStore } from '../../store/index.js';
import { createAdminApp, listenAdmin } from '../server.js';

/** A parsed JSON answer: tests read into it freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test support: bodies are checked by assertions, not types
type Json = Record<string, any>;

/** The admin API over a real embedded store on a real socket (port 0), for in-process tests. */
export interface AdminApi extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/apis/sluice/v1` */
  readonly base: string;
  /** One request; a JSON body is sent as JSON, a string as is. */
  call(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: Json | undefined }>;
}

export async function startAdminApi(): Promise<AdminApi> {
  const dir = await tempDir();
  const store = await EmbeddedStore.open({ dataDir: dir.path });
  const resources = new ResourceService(store, { prefix: '' });
  const { server, url } = await listenAdmin(createAdminApp({ resources, logger: silentLogger() }), '127.0.0.1', 0);
  const base = `${url}/apis/sluice/v1`;
  return {
    base,
    async call(method, path, body, contentType = 'application/json') {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': contentType },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Json) : undefined };
    },
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}
