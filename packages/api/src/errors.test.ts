import { describe, expect, it } from 'vitest';
import { ApiError, formatFieldError } from './errors.js';

describe('errors', () => {
  it('formats a field error as "field: message"', () => {
    expect(formatFieldError({ field: 'spec.port', message: 'must be <= 65535' })).toBe('spec.port: must be <= 65535');
    expect(formatFieldError({ field: '', message: 'must be an object' })).toBe('must be an object');
  });

  it('ApiError carries a code and the field errors', () => {
    const e = new ApiError('invalid', 'route/shop is invalid', [{ field: 'spec', message: 'Required value' }]);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('invalid');
    expect(e.errors).toHaveLength(1);
    expect(e.name).toBe('ApiError');
    expect(new ApiError('parse', 'x').errors).toEqual([]);
  });
});
