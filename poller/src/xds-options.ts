// The xds engine's options from the poller's flags: its own port
// (--xds-listen), the agents' TLS and client-certificate settings, the same
// plaintext rule (loopback only unless --allow-plaintext), where its state
// survives restarts, and its events in the poller's log.
import path from 'node:path';
import type { XdsEngineEvent, XdsEngineOptions } from '@loadfeed/kernel-bridge';
import type { Logger } from 'pino';
import { isLoopbackPeer } from './ingest/auth.js';
import type { PollerSecurity } from './ingest/server.js';

export const XDS_STATE_FILE_NAME = 'xds-state.json';

/** Under systemd (StateDirectory=loadfeed) the state file lives there; elsewhere only where --xds-state says. */
export function defaultXdsStateFile(env: NodeJS.ProcessEnv): string | null {
  const dir = env['STATE_DIRECTORY']?.split(':')[0];
  return dir === undefined || dir === '' ? null : path.join(dir, XDS_STATE_FILE_NAME);
}

export function xdsEngineOptions(listen: string, stateFile: string | null, security: PollerSecurity, logger: Logger): XdsEngineOptions {
  const tls = security.credentials._isSecure();
  return {
    listen,
    credentials: security.credentials,
    stateFile,
    // With TLS, the handshake has checked a client certificate where --tls-client-ca asks for one.
    admit: (peer) =>
      tls || security.auth.allowPlaintext || isLoopbackPeer(peer)
        ? null
        : 'plaintext xDS is served to loopback only: configure TLS (--tls-cert, --tls-key, --tls-client-ca) or start the poller with --allow-plaintext',
    onEvent: (event: XdsEngineEvent) => logXdsEvent(logger, event),
  };
}

function logXdsEvent(logger: Logger, event: XdsEngineEvent): void {
  switch (event.kind) {
    case 'connect':
    case 'disconnect':
      logger.debug({ xdsStream: event.stream, node: event.node, peer: event.peer }, `xDS client ${event.kind === 'connect' ? 'connected' : 'gone'}`);
      return;
    case 'nack':
      logger.warn(
        { xdsStream: event.stream, node: event.node, peer: event.peer, type: event.typeUrl, version: event.version, detail: event.message },
        'xDS client rejected a response (NACK); it keeps its last good config',
      );
      return;
    case 'state-error':
      logger.error({ detail: event.message }, 'xDS state file');
      return;
  }
}
