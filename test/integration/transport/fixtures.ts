import * as net from 'net';

/** A fixed test key (32 letters and digits); never a real cluster's key. */
export const TEST_OVERLAY_KEY = 'TestOverlayKey0123456789abcdefgh';
export const OTHER_OVERLAY_KEY = 'IntruderKey0123456789abcdefghijk';

/** A loopback host:port where nothing listens (bound once, then released). */
export async function deadLoopbackAddress(host = '127.0.0.1'): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `${host}:${port}`;
}
