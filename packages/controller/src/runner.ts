/**
 * A controller stage (STYLE §1): started once with the process's abort signal, closed on
 * shutdown. `main` only wires runners together; runners talk through Watchables.
 */
export interface Runner {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
