import * as net from 'net';
import { HeptoError, errnoCode } from '../../shared/errors';
import type { ControlRequest, ControlResponse } from './protocol';

/** Asks the running agent for its status. Throws AGENT_NOT_RUNNING when nobody answers. */
export function requestStatus(socketPath: string, timeoutMs = 5000): Promise<unknown> {
  return request(socketPath, { cmd: 'status' }, timeoutMs);
}

/** One request to the running agent; its answer's data. AGENT_NOT_RUNNING when nobody answers. */
export function request(socketPath: string, req: ControlRequest, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new HeptoError('AGENT_NOT_RUNNING', `hepto-agent did not answer on ${socketPath} within ${timeoutMs} ms`, {
          hint: 'check: systemctl status hepto-agent',
        }),
      );
    }, timeoutMs);
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (c) => (buf += c.toString('utf8')));
    sock.on('error', (e) => {
      clearTimeout(timer);
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        reject(
          new HeptoError('AGENT_NOT_RUNNING', `hepto-agent is not running (nothing answers on ${socketPath})`, {
            hint: 'start it: systemctl start hepto-agent',
          }),
        );
      } else if (code === 'EACCES') {
        reject(new HeptoError('AGENT_NOT_RUNNING', `permission denied on ${socketPath}`, { hint: 'the control socket is root only: run with sudo' }));
      } else {
        reject(new HeptoError('AGENT_NOT_RUNNING', `cannot reach hepto-agent on ${socketPath}: ${code ?? e.message}`));
      }
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        const res = JSON.parse(buf.trim()) as ControlResponse;
        if (res.ok) resolve(res.data);
        else reject(new HeptoError('INTERNAL', `the agent answered: ${res.error}`));
      } catch {
        reject(new HeptoError('INTERNAL', `the agent sent an unreadable answer on ${socketPath}`));
      }
    });
  });
}
