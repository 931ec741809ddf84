// Real loopback TCP connections for SOCK_DIAG tests: a listen(0) server and N
// clients, resolved once the server has accepted all of them.
import net from 'node:net';
import { once } from 'node:events';

export interface Connections {
  readonly port: number;
  /** Closes every connection on both sides and waits for all of them to report 'close'. */
  closeConnections(): Promise<void>;
  close(): Promise<void>;
}

export async function openConnections(host: string, count: number): Promise<Connections> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const clients = Array.from({ length: count }, () => net.connect(port, host));
  await Promise.all(clients.map((c) => once(c, 'connect')));
  while (accepted.length < count) await once(server, 'connection');
  const closeConnections = async (): Promise<void> => {
    const all = [...clients, ...accepted];
    const closed = all.map((s) => (s.closed ? Promise.resolve() : once(s, 'close')));
    for (const s of all) s.destroy();
    await Promise.all(closed);
  };
  return {
    port,
    closeConnections,
    close: async () => {
      await closeConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
