/** A TCP proxy for tests that lose a reply on purpose, as a flaky network does. */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface FlakyProxy {
  /** host:port to connect to instead of the server. */
  addr: string;
  /** How many connections were cut (one at most). */
  cuts: () => number;
  close: () => void;
}

/**
 * A TCP proxy to `target` (host:port) that cuts its first connection once `cutAfterBytes` bytes
 * have come back from the server: a reply lost mid-stream. Once one is cut, the rest pass untouched.
 */
export function flakyProxy(target: string, cutAfterBytes: number): Promise<FlakyProxy> {
  const host = target.slice(0, target.lastIndexOf(":"));
  const port = Number(target.slice(target.lastIndexOf(":") + 1));
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(port, host);
    sockets.add(client).add(upstream);
    let back = 0;
    const cutThis = cuts === 0;
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      back += d.length;
      if (cutThis && back > cutAfterBytes) {
        cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        addr: `127.0.0.1:${(server.address() as { port: number }).port}`,
        cuts: () => cuts,
        close: () => {
          server.close();
          for (const s of sockets) s.destroy();
        },
      }),
    ),
  );
}

export interface DroppingProxy {
  /** host:port to connect to instead of the server. */
  addr: string;
  /** How many connections were made through it (each one cut). */
  connections: () => number;
  close: () => void;
}

/**
 * A TCP proxy to `target` (host:port) that cuts every connection: at once when `cutAfterBytes`
 * is 0 (a server that is down), else once that many bytes have come back (a network that keeps
 * failing mid-stream). Every attempt through it fails with UNAVAILABLE, so only a deadline or
 * the attempts running out ends a call.
 */
export function droppingProxy(target: string, cutAfterBytes = 0): Promise<DroppingProxy> {
  const host = target.slice(0, target.lastIndexOf(":"));
  const port = Number(target.slice(target.lastIndexOf(":") + 1));
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections += 1;
    sockets.add(client);
    client.on("error", () => client.destroy());
    if (cutAfterBytes === 0) {
      client.destroy();
      return;
    }
    const upstream = createConnection(port, host);
    sockets.add(upstream);
    let back = 0;
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      back += d.length;
      if (back > cutAfterBytes) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("error", end).on("close", end);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        addr: `127.0.0.1:${(server.address() as { port: number }).port}`,
        connections: () => connections,
        close: () => {
          server.close();
          for (const s of sockets) s.destroy();
        },
      }),
    ),
  );
}

export interface CuttableProxy {
  /** host:port to connect to instead of the server. */
  addr: string;
  /** How many connections were made through it. */
  connections: () => number;
  /** Cuts every connection open now (a network that drops them); later ones pass. */
  cut: () => void;
  close: () => void;
}

/** A TCP proxy to `target` (host:port) whose open connections the test cuts when it chooses. */
export function cuttableProxy(target: string): Promise<CuttableProxy> {
  const host = target.slice(0, target.lastIndexOf(":"));
  const port = Number(target.slice(target.lastIndexOf(":") + 1));
  let connections = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections += 1;
    const upstream = createConnection(port, host);
    open.add(client).add(upstream);
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  const cut = () => {
    for (const s of [...open]) s.destroy();
  };
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        addr: `127.0.0.1:${(server.address() as { port: number }).port}`,
        connections: () => connections,
        cut,
        close: () => {
          server.close();
          cut();
        },
      }),
    ),
  );
}
