/** One access-log line (docs/observability.md, "Access log"). */
export interface AccessLogEntry {
  time: string;
  request_id: string;
  listener: string;
  route: string;
  upstream: string;
  endpoint: string;
  client_address: string;
  method: string;
  authority: string;
  path: string;
  protocol: string;
  status: number;
  bytes_sent: number;
  duration_ms: number;
  upstream_duration_ms: number | null;
  user_agent: string;
  retries: number;
}

/** One access-log line of an L4 listener: per TCP/TLS connection, per UDP session. */
export interface L4AccessLogEntry {
  time: string;
  listener: string;
  /** `TCP`, `TLS` (passthrough) or `UDP`. */
  protocol: string;
  upstream: string;
  endpoint: string;
  client_address: string;
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
}

export interface LineSink {
  write(chunk: string): boolean;
  readonly writableLength: number;
}

/** Past this many bytes queued in the sink, lines are dropped (and counted) rather than buffered. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * JSON lines to stdout without the logger: JSON.stringify of a flat object per request, and
 * one write per event-loop turn for every line of that turn. A sink that cannot keep up
 * (a stalled pipe) loses lines instead of growing the process without bound.
 */
export class AccessLog {
  private pending: string[] = [];
  private scheduled = false;
  dropped = 0;

  constructor(private readonly sink: LineSink = process.stdout) {}

  write(entry: AccessLogEntry | L4AccessLogEntry): void {
    this.pending.push(JSON.stringify(entry));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    const lines = this.pending;
    if (lines.length === 0) return;
    this.pending = [];
    if (this.sink.writableLength > MAX_QUEUED_BYTES) {
      this.dropped += lines.length;
      return;
    }
    this.sink.write(`${lines.join('\n')}\n`);
  };
}
