// deploy/Dockerfile, checked statically: no Docker engine runs on these machines, so the image
// is never built here. What can drift is checked against the repository: stages, the non-root
// user, the entry points, COPY sources (present and not excluded by .dockerignore), every
// workspace manifest for `npm ci`, and every package the two binaries need at run time.
import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './k8s.js';

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

/** Dockerfile instructions by stage: continuation lines joined, comments dropped. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const joined = text.replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(trimmed)!;
    const instruction = { op: op!.toUpperCase(), args: rest! };
    if (instruction.op === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)!;
      stages.push({ from: from!, name: name ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0 && instruction.op === 'ARG') {
      const [key, value] = instruction.args.split('=');
      args.set(key!, value ?? '');
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/**
 * .dockerignore semantics for context-relative paths: `**`, `*`, a pattern also excludes what
 * is below it, `!` re-includes, and the last matching pattern wins.
 */
function ignoreMatcher(patterns: string[]): (path: string) => boolean {
  const rules = patterns.map((p) => {
    const negated = p.startsWith('!');
    const source = p
      .replace(/^!/, '')
      .replace(/\/$/, '')
      .split('**')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
      .join('.*')
      .replace(/^\.\*\//, '(?:.*/)?');
    return { negated, regexp: new RegExp(`^${source}(?:/.*)?$`) };
  });
  return (path) => {
    const clean = path.replace(/^\.\//, '').replace(/\/$/, '');
    let excluded = false;
    for (const rule of rules) if (rule.regexp.test(clean)) excluded = !rule.negated;
    return excluded;
  };
}

const repo = (path: string): string => join(repoRoot, path);

describe('deploy/Dockerfile', () => {
  let parsed: ReturnType<typeof parseDockerfile>;
  let ignored: (path: string) => boolean;
  let runtime: Stage;
  beforeAll(async () => {
    parsed = parseDockerfile(await readFile(repo('deploy/Dockerfile'), 'utf8'));
    const patterns = (await readFile(repo('.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    ignored = ignoreMatcher(patterns);
    runtime = parsed.stages.at(-1)!;
  });

  it('is multi-stage: build stages, then a slim Node 20 runtime', () => {
    expect(parsed.args.get('NODE_IMAGE')).toBe('node:20-bookworm-slim');
    expect(parsed.stages.map((s) => s.name)).toEqual(['base', 'build', 'prod-deps', 'runtime']);
    expect(runtime.from).toBe('${NODE_IMAGE}');
    const runs = (stage: string) => parsed.stages.find((s) => s.name === stage)!.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs('build')).toContain('npm ci');
    expect(runs('prod-deps').some((r) => r.includes('npm ci --omit=dev'))).toBe(true);
    // The runtime installs nothing with npm: no devDependencies, no compilers.
    expect(runs('runtime').some((r) => /npm (ci|install)|apt-get/.test(r))).toBe(false);
  });

  it('runs as a non-root user that the image creates', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!;
    expect(user.split(':')[0]).not.toMatch(/^(root|0)$/);
    const uid = user.split(':')[0]!;
    expect(runtime.instructions.some((i) => i.op === 'RUN' && i.args.includes(`useradd`) && i.args.includes(`--uid ${uid}`))).toBe(true);
    // The Helm chart and the kustomize base run the pods as the same uid.
    expect(uid).toBe('10001');
  });

  it('has `sluice` as entry point and links `sluicectl`, both to executables in the repository', async () => {
    expect(runtime.instructions.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["sluice"]');
    const links = runtime.instructions.filter((i) => i.op === 'RUN').flatMap((i) => [...i.args.matchAll(/ln -s \/app\/(\S+) \/usr\/local\/bin\/(\S+)/g)]);
    expect(links.map((m) => m[2]).sort()).toEqual(['sluice', 'sluicectl']);
    for (const [, target] of links) {
      await access(repo(target!), constants.X_OK);
      expect(await readFile(repo(target!), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
      // The link target must be copied into the runtime stage.
      expect(runtime.instructions.some((i) => i.op === 'COPY' && i.args.includes(`/src/${target!.slice(0, target!.lastIndexOf('/'))} `))).toBe(true);
    }
  });

  it('copies from the context only files that exist and that .dockerignore keeps', async () => {
    const sources = parsed.stages.flatMap((s) => s.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1)));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      await access(repo(source));
      expect(ignored(source), `${source} is excluded by .dockerignore`).toBe(false);
    }
    // The matcher works: the things that must stay out are out.
    expect(['node_modules', 'packages/agent/node_modules/x', 'packages/agent/dist/index.js', '.git', 'test/e2e/a.test.ts', 'examples/other.yaml'].filter((p) => !ignored(p))).toEqual([]);
  });

  it('puts into the runtime the repository files that runtime code reads by relative URL (e.g. `sluice up`)', async () => {
    const copied = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/));
    const needs: string[] = [];
    for (const dir of await readdir(repo('packages'))) {
      if (dir === 'testing') continue; // test fixtures, not shipped
      for (const file of (await readdir(repo(`packages/${dir}/src`), { recursive: true })).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
        const text = await readFile(repo(`packages/${dir}/src/${file}`), 'utf8');
        for (const [, rel] of text.matchAll(/new URL\('(\.\.\/[^']+)', import\.meta\.url\)/g)) {
          // Compiled files sit in dist/ at the same depth as src/, so the URL resolves alike.
          const target = join(`packages/${dir}/src`, dirname(file), rel!);
          needs.push(target);
        }
      }
    }
    expect(needs).toContain('examples/quickstart.yaml');
    for (const target of needs) {
      const covered = copied.some((args) => {
        const dest = args.at(-1)!.replace(/\/$/, '');
        const src = args.find((a) => !a.startsWith('--'))!.replace(/^\/src\//, '').replace(/\/$/, '');
        return target === src || target.startsWith(`${src}/`) || target.startsWith(`${dest}/`) || target === `${dest}/${src.split('/').pop()}`;
      });
      expect(covered, `${target} is read at run time but not copied into the runtime stage`).toBe(true);
    }
  });

  it('needs only production dependencies at run time: code reachable from the entry points imports no devDependency', async () => {
    const { builtinModules } = await import('node:module');
    const builtins = new Set(builtinModules);
    const dirOf = new Map<string, string>();
    for (const dir of await readdir(repo('packages'))) dirOf.set((JSON.parse(await readFile(repo(`packages/${dir}/package.json`), 'utf8')) as { name: string }).name, dir);
    const problems: string[] = [];
    const seen = new Set<string>();
    const packagesImported = new Set<string>();
    // The two bins load packages/<x>/dist/main.js: walk the sources those come from.
    const queue = ['packages/sluice/src/main.ts', 'packages/cli/src/main.ts'];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const dir = file.split('/')[1]!;
      const manifest = JSON.parse(await readFile(repo(`packages/${dir}/package.json`), 'utf8')) as { dependencies?: Record<string, string> };
      const text = await readFile(repo(file), 'utf8');
      // Type-only imports are erased by tsc; a worker started by file URL is loaded too.
      const specifiers = [...text.matchAll(/^\s*(?:import|export)(?!\s+type\s)[^;]*?\sfrom\s+'([^']+)'|^\s*import\s+'([^']+)'|import\('([^']+)'\)|new URL\('(\.\/[^']+\.js)', import\.meta\.url\)/gm)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]!);
      for (const specifier of specifiers) {
        if (specifier.startsWith('.')) {
          queue.push(join(dirname(file), specifier).replace(/\.js$/, '.ts'));
          continue;
        }
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        packagesImported.add(name);
        if (!Object.hasOwn(manifest.dependencies ?? {}, name)) problems.push(`${file} imports ${specifier}, not among the dependencies of packages/${dir}/package.json`);
        else if (dirOf.has(name)) queue.push(`packages/${dirOf.get(name)!}/src/index.ts`);
      }
    }
    // The walk reached the controller, the agent and its worker, and sluicectl's commands.
    for (const file of ['packages/controller/src/index.ts', 'packages/agent/src/agent/worker-main.ts', 'packages/api/src/index.ts', 'packages/translator/src/index.ts']) expect(seen, file).toContain(file);
    expect(seen.size).toBeGreaterThan(50);
    for (const dependency of ['express', 'winston', '@grpc/grpc-js', 'commander', 'zod', 'prom-client']) expect(packagesImported, dependency).toContain(dependency);
    expect(problems).toEqual([]);
  });

  it('copies --from stages that exist earlier in the file', () => {
    parsed.stages.forEach((stage, index) => {
      for (const i of stage.instructions.filter((x) => x.op === 'COPY' && x.args.startsWith('--from='))) {
        const from = /^--from=(\S+)/.exec(i.args)![1]!;
        expect(parsed.stages.slice(0, index).map((s) => s.name), `${stage.name}: COPY ${i.args}`).toContain(from);
      }
    });
  });

  it('gives npm ci every workspace manifest, so that the lockfile matches', async () => {
    const base = parsed.stages.find((s) => s.name === 'base')!;
    const copied = base.instructions.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/)[0]);
    const workspaces = (await readdir(repo('packages'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => `packages/${d.name}/package.json`);
    expect(copied).toEqual(expect.arrayContaining(['package.json', ...workspaces]));
  });

  it('puts into the runtime every workspace package that sluice and sluicectl load, with its dist', async () => {
    const manifest = async (dir: string) => JSON.parse(await readFile(repo(`packages/${dir}/package.json`), 'utf8')) as { name: string; dependencies?: Record<string, string> };
    const dirs = (await readdir(repo('packages'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    const byName = new Map(await Promise.all(dirs.map(async (d) => [(await manifest(d)).name, d] as const)));
    const needed = new Set<string>();
    const visit = async (dir: string): Promise<void> => {
      if (needed.has(dir)) return;
      needed.add(dir);
      for (const dep of Object.keys((await manifest(dir)).dependencies ?? {})) if (byName.has(dep)) await visit(byName.get(dep)!);
    };
    await visit('sluice');
    await visit('cli');
    expect(needed.size).toBeGreaterThanOrEqual(6);
    const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    for (const dir of needed) {
      expect(copies, dir).toContain(`--from=build /src/packages/${dir}/package.json packages/${dir}/`);
      expect(copies, dir).toContain(`--from=build /src/packages/${dir}/dist packages/${dir}/dist`);
    }
  });
});
