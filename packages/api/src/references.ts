import type { Resource } from './validate.js';

/** A reference from one object to another, with the field path that holds it. */
export interface ObjectReference {
  kind: string;
  namespace: string;
  name: string;
  /** Where the reference is written, e.g. `spec.rules[0].backendRefs[1]`. */
  field: string;
}

interface Ref {
  name: string;
  namespace?: string | undefined;
}

/**
 * Every cross-object reference of a (validated) resource: Route/TCPRoute/UDPRoute parentRefs
 * -> Listener and backendRefs -> Upstream, request mirrors -> Upstream, Listener TLS
 * certificates -> Secret, Upstream TLS CA and client certificates -> Secret. A reference
 * without a namespace points into the object's own namespace.
 */
export function resourceReferences(r: Resource): ObjectReference[] {
  const own = r.metadata.namespace ?? 'default';
  const out: ObjectReference[] = [];
  const add = (kind: string, ref: Ref, field: string): void => {
    out.push({ kind, namespace: ref.namespace ?? own, name: ref.name, field });
  };

  switch (r.kind) {
    case 'Route':
      r.spec.parentRefs.forEach((p, i) => add('Listener', p, `spec.parentRefs[${i}]`));
      r.spec.rules.forEach((rule, i) => {
        rule.backendRefs?.forEach((b, j) => add('Upstream', b, `spec.rules[${i}].backendRefs[${j}]`));
        rule.filters?.forEach((f, k) => {
          if (f.requestMirror) add('Upstream', f.requestMirror.backendRef, `spec.rules[${i}].filters[${k}].requestMirror.backendRef`);
        });
      });
      break;
    case 'TCPRoute':
    case 'UDPRoute':
      r.spec.parentRefs.forEach((p, i) => add('Listener', p, `spec.parentRefs[${i}]`));
      r.spec.backendRefs.forEach((b, i) => add('Upstream', b, `spec.backendRefs[${i}]`));
      break;
    case 'Listener':
      r.spec.tls?.certificateRefs?.forEach((c, i) => add('Secret', c, `spec.tls.certificateRefs[${i}]`));
      break;
    case 'Upstream':
      r.spec.tls?.caCertificateRefs?.forEach((c, i) => add('Secret', c, `spec.tls.caCertificateRefs[${i}]`));
      if (r.spec.tls?.clientCertificateRef) add('Secret', r.spec.tls.clientCertificateRef, 'spec.tls.clientCertificateRef');
      break;
    case 'Secret':
    case 'Agent':
      break;
  }
  return out;
}
