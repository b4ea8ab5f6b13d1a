import { StoreError, type Compare, type TxnOp } from './store.js';

// Both stores reject the same malformed requests with the same code, before any I/O, so the
// contract holds even where etcd's own message would differ.

export function validateKey(key: unknown, where: string): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new StoreError('invalid', `${where}: key must be a non-empty string`);
  }
}

export function validatePrefix(prefix: unknown, where: string): asserts prefix is string {
  if (typeof prefix !== 'string') throw new StoreError('invalid', `${where}: prefix must be a string`);
}

export function validateRevision(revision: unknown, where: string, min: number): asserts revision is number {
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < min) {
    throw new StoreError('invalid', `${where}: revision must be an integer >= ${min}, got ${String(revision)}`);
  }
}

export function validateTxn(compares: readonly Compare[], ops: readonly TxnOp[]): void {
  compares.forEach((compare, i) => {
    validateKey(compare.key, `txn compares[${i}]`);
    validateRevision(compare.modRevision, `txn compares[${i}] (${compare.key})`, 0);
  });
  const seen = new Set<string>();
  ops.forEach((op, i) => {
    validateKey(op.key, `txn ops[${i}]`);
    if (op.type === 'put') {
      if (typeof op.value !== 'string') throw new StoreError('invalid', `txn ops[${i}] (${op.key}): value must be a string`);
    } else if (op.type !== 'delete') {
      throw new StoreError('invalid', `txn ops[${i}]: unknown op type ${String((op as { type: unknown }).type)}`);
    }
    if (seen.has(op.key)) throw new StoreError('invalid', `txn ops[${i}]: key ${op.key} is written twice in one transaction`);
    seen.add(op.key);
  });
}
