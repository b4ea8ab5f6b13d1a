import type { RequestRedirect } from '@sluice/proto';
import { replacePrefix } from './url-rewrite.js';

/** Gateway API RequestRedirect: answered by the agent itself, no backend involved. */
export class CompiledRequestRedirect {
  readonly statusCode: number;
  private readonly scheme: string;
  private readonly hostname: string;
  private readonly port: number;
  private readonly path: RequestRedirect['path'];

  constructor(config: RequestRedirect) {
    this.statusCode = config.statusCode || 302;
    this.scheme = config.scheme;
    this.hostname = config.hostname;
    this.port = config.port;
    this.path = config.path;
  }

  /**
   * The Location for a request. `host` is the request's Host without port, `port` the one
   * it carried (undefined when none), `prefix` the matched path prefix (see router).
   */
  location(scheme: string, host: string, port: string | undefined, path: string, query: string, prefix: string): string {
    const outScheme = this.scheme || scheme;
    const outHost = this.hostname || host;
    // An explicit port wins; a scheme change drops the old port (the new scheme's default).
    let outPort = this.port > 0 ? String(this.port) : this.scheme !== '' && this.scheme !== scheme ? undefined : port;
    if ((outScheme === 'http' && outPort === '80') || (outScheme === 'https' && outPort === '443')) outPort = undefined;
    let outPath = path;
    if (this.path?.$case === 'replaceFullPath') outPath = this.path.value;
    else if (this.path?.$case === 'replacePrefixMatch') outPath = replacePrefix(path, prefix, this.path.value);
    return `${outScheme}://${outHost}${outPort === undefined ? '' : `:${outPort}`}${outPath}${query === '' ? '' : `?${query}`}`;
  }
}
