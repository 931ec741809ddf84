// Wait for a condition that an event elsewhere (another process, a socket)
// makes true, checking often and failing after a bounded time with a message
// that says what was awaited. The default bound is generous: it is reached
// only when something is wrong, and a loaded machine (processes to start,
// TLS handshakes) must not be taken for that.
export const WAIT_DEFAULT_MS = 30_000;

export async function waitFor(what: string, ready: () => boolean, timeoutMs = WAIT_DEFAULT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
