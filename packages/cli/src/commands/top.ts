import type { Command } from 'commander';
import { kindInfo } from '@sluice/api';
import { CliError } from '../errors.js';
import type { ApiObject } from '../object.js';
import { alignRows, byP99Desc, endpointRows, formatCount, formatMs, formatRate, UNKNOWN, type EndpointRow } from '../printers/endpoints.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

/**
 * `sluicectl top endpoints`: every endpoint of every Upstream, highest p99 first (kubectl top).
 * The figures are those the controller wrote into Upstream.status.endpoints; an endpoint
 * without data shows '-' and sorts last.
 */
export function formatTopEndpoints(upstreams: readonly ApiObject[], allNamespaces: boolean): string {
  const rows: EndpointRow[] = upstreams.flatMap((u) => endpointRows(u)).sort(byP99Desc);
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'UPSTREAM', 'ENDPOINT', 'WEIGHT', 'P50', 'P99', 'ERRORS', 'REQUESTS'];
  return alignRows([
    header,
    ...rows.map((r) => [
      ...(allNamespaces ? [r.namespace] : []),
      r.upstream,
      `${r.address}:${r.port}`,
      r.effectiveWeight === undefined ? String(r.weight) : String(r.effectiveWeight),
      formatMs(r.p50Ms),
      formatMs(r.p99Ms),
      formatRate(r.errorRate),
      formatCount(r.requests),
    ]),
  ]);
}

export async function runTopEndpoints(session: Session, allNamespaces: boolean): Promise<void> {
  const client = await session.client();
  const { namespace } = await session.connection();
  const list = await client.list(kindInfo('Upstream')!, { namespace: allNamespaces ? undefined : namespace });
  if (list.items.every((u) => endpointRows(u).length === 0)) {
    session.io.err(allNamespaces ? 'No resources found\n' : `No resources found in ${namespace} namespace.\n`);
    return;
  }
  session.io.out(formatTopEndpoints(list.items, allNamespaces));
}

export function registerTop(parent: Command, session: Session): void {
  const top = parent.command('top').description('Show endpoint latency, errors and effective weights, busiest first');
  const cmd = top
    .command('endpoints')
    .alias('endpoint')
    .alias('ep')
    .description(`Every endpoint of every upstream, sorted by p99 latency (highest first); '${UNKNOWN}': no data yet`)
    .option('-A, --all-namespaces', 'list across all namespaces')
    .action(async (flags: { allNamespaces?: boolean }) => {
      await runTopEndpoints(session, flags.allNamespaces === true);
    });
  top.action(() => {
    throw new CliError('usage', 'top needs a resource type: endpoints');
  });
  withExamples(
    cmd,
    `
# Endpoints of the current namespace, slowest first
sluicectl top endpoints

# Across every namespace
sluicectl top endpoints -A
`,
  );
}
