import type { KindInfo } from '@sluice/api';

/**
 * Store key layout, like Kubernetes' /registry: `<prefix>/resources/<plural>/<namespace>/<name>`
 * for namespaced kinds and `<prefix>/resources/<plural>/<name>` for cluster-scoped ones.
 * Names and namespaces are DNS-1123, so '/' never appears inside a segment.
 */
export class ResourceKeys {
  constructor(readonly prefix: string) {}

  /** Every resource of every kind. */
  all(): string {
    return `${this.prefix}/resources/`;
  }

  /** Every object of a kind; with `namespace`, only that namespace's. */
  list(kind: KindInfo, namespace?: string): string {
    const base = `${this.prefix}/resources/${kind.plural}/`;
    return kind.namespaced && namespace !== undefined ? `${base}${namespace}/` : base;
  }

  object(kind: KindInfo, namespace: string | undefined, name: string): string {
    return kind.namespaced ? `${this.list(kind, namespace ?? 'default')}${name}` : `${this.list(kind)}${name}`;
  }
}
