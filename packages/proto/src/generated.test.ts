import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, tempDir } from '@sluice/testing';

// The committed generated code must be exactly what the .proto files produce today.
describe('generated code', () => {
  it('is up to date with proto/', async () => {
    await using out = await tempDir();
    execFileSync(join(repoRoot, 'node_modules/.bin/buf'), ['generate', '-o', out.path], { cwd: repoRoot });
    const dir = 'packages/proto/src/gen/sluice/v1';
    const files = readdirSync(join(repoRoot, dir)).sort();
    expect(readdirSync(join(out.path, dir)).sort()).toEqual(files);
    for (const file of files) {
      const fresh = readFileSync(join(out.path, dir, file), 'utf8');
      expect(fresh, `${file} is stale: run npm run generate -w @sluice/proto`).toBe(readFileSync(join(repoRoot, dir, file), 'utf8'));
    }
  });
});
