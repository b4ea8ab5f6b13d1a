import type { Command } from 'commander';
import { API_VERSION } from '@sluice/api';
import { asString } from '../object.js';
import { parseOutputFormat } from '../printers/output.js';
import { formatJson, formatYaml } from '../printers/yaml.js';
import type { Session } from '../session.js';
import { CLI_VERSION } from '../version.js';
import { withExamples } from './examples.js';

export function registerVersion(parent: Command, session: Session): void {
  const cmd = parent
    .command('version')
    .description('Print the client and server versions')
    .option('--client', 'only the client version (no server call)')
    .option('-o, --output <format>', 'output format: yaml or json')
    .action(async (flags: { client?: boolean; output?: string }) => {
      const format = parseOutputFormat(flags.output, ['yaml', 'json']);
      const clientVersion = { version: CLI_VERSION, apiVersion: API_VERSION };
      if (format === 'default' || format === 'wide' || format === 'name') {
        // Like kubectl: the client version first, then the server's or an error.
        session.io.out(`Client Version: ${CLI_VERSION}\n`);
        if (flags.client === true) return;
        const server = await (await session.client()).version();
        const store = asString(server['store']);
        session.io.out(`Server Version: ${asString(server['version']) ?? 'unknown'}${store === undefined ? '' : ` (store: ${store})`}\n`);
        return;
      }
      let server: Record<string, unknown> | undefined;
      let failure: Error | undefined;
      if (flags.client !== true) {
        try {
          server = await (await session.client()).version();
        } catch (error: unknown) {
          failure = error instanceof Error ? error : new Error(String(error));
        }
      }
      const doc = server === undefined ? { clientVersion } : { clientVersion, serverVersion: server };
      session.io.out(format === 'json' ? formatJson(doc) : formatYaml(doc));
      if (failure !== undefined) throw failure;
    });
  withExamples(
    cmd,
    `
sluicectl version
sluicectl version --client
sluicectl version -o json
`,
  );
}
