import { describe, expect, it } from 'vitest';
import { isLabelKey, isLabelValue } from './meta.js';

describe('label keys and values (Kubernetes rules)', () => {
  it.each(['app', 'app.kubernetes.io/name', 'example.com/Tier_1', 'a', 'A-b.c_d'])('key %j is valid', (k) => {
    expect(isLabelKey(k)).toBe(true);
  });
  it.each(['', '/app', 'Example.com/app', 'app/', '-app', 'a b', 'x/y/z', 'a'.repeat(64)])('key %j is invalid', (k) => {
    expect(isLabelKey(k)).toBe(false);
  });
  it.each(['', 'v1', 'edge-pool', 'a.b_c'])('value %j is valid', (v) => {
    expect(isLabelValue(v)).toBe(true);
  });
  it.each(['-x', 'x-', 'a b', 'a/b', 'a'.repeat(64)])('value %j is invalid', (v) => {
    expect(isLabelValue(v)).toBe(false);
  });
});
