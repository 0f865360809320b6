import * as os from 'os';
import type { Systeminformation as SI } from 'systeminformation';
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
    // The three parts of systeminformation the facts use, not its index, which loads all twenty of
    // its modules (audio, bluetooth, printers...): 1.3 MiB of the agent's resident memory. Inside
    // the probe, so that a layout change in a later systeminformation falls back like a failure.
    const { cpu: siCpu } = require('systeminformation/lib/cpu') as { cpu: () => Promise<SI.CpuData> };
    const { mem: siMem } = require('systeminformation/lib/memory') as { mem: () => Promise<SI.MemData> };
    const { osInfo: siOsInfo } = require('systeminformation/lib/osinfo') as { osInfo: () => Promise<SI.OsData> };
    const [cpu, mem, info] = await Promise.all([siCpu(), siMem(), siOsInfo()]);
    return {
      cores: cpu.cores || fallback.cores,
      memory_mb: Math.round((mem.total || os.totalmem()) / 1048576),
      os: [info.distro, info.release].filter(Boolean).join(' ') || fallback.os,
      agent_version: AGENT_VERSION,
    };
  })().catch(() => null);
  return (await Promise.race([probe, timeout])) ?? fallback;
}
