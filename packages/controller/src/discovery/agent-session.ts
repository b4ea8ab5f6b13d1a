import { randomBytes } from 'node:crypto';
import type { DiscoveryRequest, HeldResource, ResourceKey, ResourceType, Source } from '@sluice/proto';
import { RESOURCE_ORDER, resourceKey } from '@sluice/translator';
import type { GroupSnapshot, ServedResource } from './translator-port.js';
import type { OutgoingResponse } from './wire.js';

/** One rejected resource as the Agent object shows it: per user object it came from. */
export interface AgentNack {
  kind: string;
  name: string;
  version: string;
  message: string;
}

interface Held {
  type: ResourceType;
  name: string;
  version: string;
}

interface Rejection extends Held {
  message: string;
  sources: readonly Source[];
}

interface InFlight {
  nonce: string;
  revision: number;
  snapshotVersion: string;
  resources: readonly ServedResource[];
  removed: readonly ResourceKey[];
}

/** Position in make-before-break order; removals go the other way round. */
function rank(type: ResourceType): number {
  const i = RESOURCE_ORDER.indexOf(type);
  return i < 0 ? RESOURCE_ORDER.length : i;
}

/**
 * The state machine of one discovery stream (docs/discovery-protocol.md, "Stream"), without
 * sockets: what the agent holds, which versions it rejected, the one response in flight and
 * the newest snapshot for it. `offer` and `answer` return the response to send, if any; the
 * server only writes it. Snapshots that arrive while a response is in flight coalesce.
 */
export class AgentSession {
  private readonly held = new Map<string, Held>();
  private readonly rejected = new Map<string, Rejection>();
  private latest: GroupSnapshot | undefined;
  private inFlight: InFlight | undefined;
  private sentFirst = false;
  private applied: number | undefined;

  constructor(
    held: readonly HeldResource[],
    private readonly newNonce: () => string = nonceSource(),
  ) {
    for (const h of held) {
      if (!h.key || h.key.name === '') continue;
      this.held.set(resourceKey(h.key.type, h.key.name), { type: h.key.type, name: h.key.name, version: h.version });
    }
  }

  /** Whether a response is waiting for its ACK/NACK. */
  get waiting(): boolean {
    return this.inFlight !== undefined;
  }

  /** Snapshot version of the response in flight (undefined when none). */
  get inFlightVersion(): string | undefined {
    return this.inFlight?.snapshotVersion;
  }

  /**
   * Store revision of the newest snapshot the agent is in sync with: it answered the response
   * that brought it there, or that snapshot had nothing new for it. Undefined before the
   * first answer.
   */
  get appliedRevision(): number | undefined {
    return this.applied;
  }

  /** Revisions between the newest snapshot for this agent and the one it applied. */
  get lag(): number | undefined {
    if (this.applied === undefined || !this.latest) return undefined;
    return Math.max(0, this.latest.revision - this.applied);
  }

  /**
   * The newest snapshot for this agent. Returns the response to send now: always the first
   * one (even empty), later only a non-empty difference, and never while one is in flight.
   * A snapshot with the same version as the current one changes nothing (a later store
   * revision that did not touch this agent's configuration).
   */
  offer(snapshot: GroupSnapshot): OutgoingResponse | undefined {
    if (this.latest?.version === snapshot.version) return undefined;
    this.latest = snapshot;
    return this.next();
  }

  /**
   * An ACK or NACK. A request that does not answer the response in flight (stale or unknown
   * nonce) changes nothing: `ignored` says why. Errors naming resources that were not in the
   * response are reported in `unknownErrors` (a removal cannot be rejected).
   */
  answer(request: DiscoveryRequest): { response?: OutgoingResponse; ignored?: string; unknownErrors: string[] } {
    const inFlight = this.inFlight;
    if (!inFlight || request.responseNonce !== inFlight.nonce) {
      const nonce = request.responseNonce === '' ? 'an empty nonce' : `nonce "${request.responseNonce}"`;
      return { ignored: `request with ${nonce} answers no response in flight`, unknownErrors: [] };
    }
    const errors = new Map(
      request.errors.filter((e) => e.key !== undefined).map((e) => [resourceKey(e.key!.type, e.key!.name), e]),
    );
    for (const r of inFlight.resources) {
      const key = resourceKey(r.type, r.name);
      const error = errors.get(key);
      if (error) {
        errors.delete(key);
        // The agent keeps its previous version (or nothing): `held` stays as it was.
        this.rejected.set(key, {
          type: r.type,
          name: r.name,
          version: r.version,
          message: error.message,
          sources: error.sources.length > 0 ? error.sources : r.sources,
        });
      } else {
        this.held.set(key, { type: r.type, name: r.name, version: r.version });
        this.rejected.delete(key);
      }
    }
    for (const k of inFlight.removed) {
      const key = resourceKey(k.type, k.name);
      this.held.delete(key);
      this.rejected.delete(key);
    }
    this.applied = inFlight.revision;
    this.inFlight = undefined;
    const unknownErrors = [...errors.values()].map((e) => `${e.key!.type} ${e.key!.name}: ${e.message}`);
    const response = this.next();
    return response ? { response, unknownErrors } : { unknownErrors };
  }

  /**
   * The agent's current rejections, one entry per user object the rejected resource came from.
   * A rejection counts while the newest snapshot still has the rejected version.
   */
  nacks(): AgentNack[] {
    const out = new Map<string, AgentNack>();
    for (const [key, r] of this.rejected) {
      if (this.versionInLatest(key) !== r.version) continue;
      const sources = r.sources.length > 0 ? r.sources : [{ kind: r.type, namespace: '', name: r.name }];
      for (const s of sources) {
        const nack = { kind: s.kind, name: s.namespace ? `${s.namespace}/${s.name}` : s.name, version: r.version, message: r.message };
        out.set(JSON.stringify(nack), nack);
      }
    }
    return [...out.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  }

  private versionInLatest(key: string): string | undefined {
    return this.latest?.resources.find((r) => resourceKey(r.type, r.name) === key)?.version;
  }

  private next(): OutgoingResponse | undefined {
    const latest = this.latest;
    if (this.inFlight || !latest) return undefined;
    const wanted = new Map(latest.resources.map((r) => [resourceKey(r.type, r.name), r]));
    // A rejection holds back exactly the rejected version; a new version is sent again.
    for (const [key, r] of this.rejected) if (wanted.get(key)?.version !== r.version) this.rejected.delete(key);
    const resources = [...wanted]
      .filter(([key, r]) => this.held.get(key)?.version !== r.version && !this.rejected.has(key))
      .map(([, r]) => r)
      .sort((a, b) => rank(a.type) - rank(b.type)); // stable: the translator's order within a type
    const removed = [...this.held]
      .filter(([key]) => !wanted.has(key))
      .map(([, h]) => ({ type: h.type, name: h.name }))
      .sort((a, b) => rank(b.type) - rank(a.type) || a.name.localeCompare(b.name));
    if (this.sentFirst && resources.length === 0 && removed.length === 0) {
      this.applied = latest.revision;
      return undefined;
    }
    this.sentFirst = true;
    const response = { nonce: this.newNonce(), revision: latest.revision, snapshotVersion: latest.version, resources, removed };
    this.inFlight = response;
    return response;
  }
}

/** Nonces unique per stream and across streams: a random prefix and a counter. */
function nonceSource(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let n = 0;
  return () => `${prefix}-${++n}`;
}
