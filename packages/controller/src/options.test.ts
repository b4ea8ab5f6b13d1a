import { describe, expect, it } from 'vitest';
import { parseControllerArgs } from './options.js';

describe('parseControllerArgs', () => {
  it('defaults to 2 probers per endpoint and a 1 s report interval', () => {
    expect(parseControllerArgs([])).toMatchObject({ healthProbers: 2, reportIntervalMs: 1000 });
    expect(parseControllerArgs(['--health-probers', '3', '--report-interval', '200ms'])).toMatchObject({ healthProbers: 3, reportIntervalMs: 200 });
  });

  it('names the flag of a bad value', () => {
    expect(() => parseControllerArgs(['--health-probers', '0', '--report-interval', '1h'])).toThrow(
      /--health-probers: must be an integer from 1 to 100, not "0"\n--report-interval: must be a duration from 50ms to 1m, not "1h"/,
    );
  });

  it('takes the leader lease TTL in whole seconds, 10 s by default', () => {
    expect(parseControllerArgs([])).toMatchObject({ leaderLeaseTtlMs: 10_000 });
    expect(parseControllerArgs(['--leader-lease-ttl', '2s'])).toMatchObject({ leaderLeaseTtlMs: 2_000 });
    expect(() => parseControllerArgs(['--leader-lease-ttl', '1500ms'])).toThrow(/--leader-lease-ttl: must be whole seconds from 2s to 5m, not "1500ms"/);
  });

  it('takes --advertise-addr as a reachable HOST:PORT (absent by default: derived from the bound address)', () => {
    expect(parseControllerArgs([]).valueOf()).not.toHaveProperty('advertiseAddr');
    expect(parseControllerArgs(['--advertise-addr', 'ctl-0.sluice:9081'])).toMatchObject({ advertiseAddr: 'ctl-0.sluice:9081' });
    expect(() => parseControllerArgs(['--advertise-addr', '0.0.0.0:9081'])).toThrow(/--advertise-addr: must name a reachable host and a port/);
    expect(() => parseControllerArgs(['--advertise-addr', 'nohost'])).toThrow(/--advertise-addr: must be HOST:PORT/);
  });
});
