// deploy/systemd: the units pass `systemd-analyze verify` (no unknown or malformed directive),
// stay hardened (`systemd-analyze security --offline`), and start `sluice` with flags that the
// real binary documents, from the variables their env files set.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { sluiceBin, tempDir } from '@sluice/testing';
import { documentedFlags, repoRoot, run } from './k8s.js';

// Rendering, kubectl and the TypeScript schema check take seconds each on a busy 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

const units = [
  { unit: 'sluice-controller.service', env: 'controller.env', command: 'controller', variable: 'SLUICE_CONTROLLER_OPTS', maxExposure: 2 },
  { unit: 'sluice-agent.service', env: 'agent.env', command: 'agent', variable: 'SLUICE_AGENT_OPTS', maxExposure: 2.5 },
] as const;

const dir = join(repoRoot, 'deploy/systemd');

describe.each(units)('deploy/systemd/$unit', ({ unit, env, command, variable, maxExposure }) => {
  let text: string;
  let flags: Set<string>;
  beforeAll(async () => {
    text = await readFile(join(dir, unit), 'utf8');
    flags = await documentedFlags(command);
  });

  it('passes systemd-analyze verify', async () => {
    await using tmp = await tempDir('sluice-systemd-');
    // verify checks that ExecStart is executable: point it at the real entry point.
    await writeFile(join(tmp.path, unit), text.replace('/usr/local/bin/sluice ', `${sluiceBin} `));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', join(tmp.path, unit)]);
    expect(stdout + stderr).toBe('');
    // The check itself catches a bad directive.
    await writeFile(join(tmp.path, 'bad.service'), `${text.replace('/usr/local/bin/sluice ', `${sluiceBin} `)}\n[Service]\nProtectSystem=strictt\n`);
    const bad = await run('systemd-analyze', ['verify', '--man=no', join(tmp.path, 'bad.service')]);
    expect(bad.stderr).toContain('strictt');
  });

  it(`is hardened: exposure at most ${maxExposure} in systemd-analyze security`, async () => {
    await using tmp = await tempDir('sluice-systemd-');
    await writeFile(join(tmp.path, unit), text);
    const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', join(tmp.path, unit)]);
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1]);
    expect(exposure).toBeLessThanOrEqual(maxExposure);
    for (const directive of ['DynamicUser=yes', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'ProtectHome=yes', 'PrivateTmp=yes']) expect(text).toContain(`\n${directive}\n`);
  });

  it(`runs sluice ${command} with $${variable}, whose flags (examples too) the binary documents`, async () => {
    expect(text).toContain(`\nExecStart=/usr/local/bin/sluice ${command} $${variable}\n`);
    expect(text).toContain(`\nEnvironmentFile=/etc/sluice/${env}\n`);
    const lines = (await readFile(join(dir, env), 'utf8')).split('\n');
    const settings = lines.filter((l) => l.replace(/^#\s*/, '').startsWith(`${variable}="`));
    expect(settings.length).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.startsWith(`${variable}=`))).toHaveLength(1);
    for (const setting of settings) {
      for (const [used] of setting.matchAll(/--[a-z][a-z0-9-]*/g)) expect(flags, `${env}: ${used}`).toContain(used);
    }
    // Writable paths named in the flags are the ones the unit gives the service.
    const active = lines.find((l) => l.startsWith(`${variable}=`))!;
    for (const [, path] of active.matchAll(/--(?:data-dir|cache-dir) (\S+)/g)) {
      const name = path!.split('/').pop()!;
      expect(text).toMatch(new RegExp(`\\n(StateDirectory|CacheDirectory)=${name}\\n`));
    }
  });
});
