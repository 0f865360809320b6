import * as os from 'os';
import si from 'systeminformation';
import type { HostFacts } from '../../shared/member';
import { AGENT_VERSION } from '../version';

/**
 * Host facts published in the member record. systeminformation gives the
 * distribution name; if it is slow or fails we fall back to Node's os module
 * rather than delay start-up.
 */
export async function gatherFacts(timeoutMs = 3000): Promise<HostFacts> {
  const fallback: HostFacts = {
    cores: os.cpus().length,
    memory_mb: Math.round(os.totalmem() / 1048576),
    os: `${os.type()} ${os.release()}`,
    agent_version: AGENT_VERSION,
  };
  const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs).unref());
  const probe = (async (): Promise<HostFacts> => {
    const [cpu, mem, info] = await Promise.all([si.cpu(), si.mem(), si.osInfo()]);
    return {
      cores: cpu.cores || fallback.cores,
      memory_mb: Math.round((mem.total || os.totalmem()) / 1048576),
      os: [info.distro, info.release].filter(Boolean).join(' ') || fallback.os,
      agent_version: AGENT_VERSION,
    };
  })().catch(() => null);
  return (await Promise.race([probe, timeout])) ?? fallback;
}
