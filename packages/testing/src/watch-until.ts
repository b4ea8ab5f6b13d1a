/**
 * Watches objects through the admin API (`?watch=true`) until one satisfies `predicate`,
 * and returns it: the event-driven way for a test to wait for the controller to write
 * something (a status condition, an Agent object), instead of polling with sleeps.
 */
export async function watchUntil<T = Record<string, unknown>>(
  adminUrl: string,
  /** e.g. `namespaces/default/listeners` or `agents` */
  path: string,
  predicate: (object: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let last: T | undefined;
  try {
    const response = await fetch(`${adminUrl}/apis/sluice/v1/${path}?watch=true`, { signal: abort.signal });
    if (!response.ok || !response.body) throw new Error(`watch ${path}: HTTP ${response.status}`);
    let buffer = '';
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as { type: string; object: T };
        buffer = buffer.slice(newline + 1);
        if (event.type === 'ERROR') throw new Error(`watch ${path}: ${JSON.stringify(event.object)}`);
        last = event.object;
        if (event.type !== 'DELETED' && predicate(event.object)) return event.object;
      }
    }
    throw new Error(`watch ${path} ended before the condition held`);
  } catch (error) {
    if (abort.signal.aborted) {
      throw new Error(`watch ${path}: condition not met within ${timeoutMs} ms; last object: ${JSON.stringify(last)}`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
