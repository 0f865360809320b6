#!/usr/bin/env node
/**
 * hepto-agent's single executable. Flags are declared as data; each command
 * lives in agent/commands/. Expected errors print one line (plus one line per
 * problem) and no stack trace.
 */
import { parseArgs } from 'util';
import { HeptoError, isHeptoError, errorMessage } from '../shared/errors';
import { scrub } from '../shared/log';
import type { Command, CommandContext } from './commands/types';
import { AGENT_VERSION } from './version';

interface CommandEntry {
  words: string[];
  usage: string;
  summary: string;
  load: () => Promise<Command>;
}

const COMMANDS: CommandEntry[] = [
  {
    words: ['run'],
    usage: 'run [--config PATH] [--log-format plain|json]',
    summary: 'run the daemon in the foreground (what systemd runs)',
    load: async () => (await import('./commands/run')).run,
  },
  {
    words: ['status'],
    usage: 'status [--json] [--mesh] [--config PATH]',
    summary: 'this node and the whole cluster as this agent sees it; --mesh: connected, RTT and path MTU of every pair',
    load: async () => (await import('./commands/status')).status,
  },
  {
    words: ['kubeconfig'],
    usage: 'kubeconfig [--config PATH]',
    summary: "on the master's machine, print the cluster admin's kubeconfig; elsewhere, say where to run it",
    load: async () => (await import('./commands/kubeconfig')).kubeconfig,
  },
  {
    words: ['config', 'validate'],
    usage: 'config validate [--config PATH]',
    summary: 'check the config; exit 1 with every problem, one line each',
    load: async () => (await import('./commands/config-validate')).configValidate,
  },
  {
    words: ['keygen'],
    usage: 'keygen',
    summary: 'print a fresh 32-character key of letters and digits',
    load: async () => (await import('./commands/keygen')).keygen,
  },
  {
    words: ['import-inventory'],
    usage: 'import-inventory FILE.ini --node NAME',
    summary: "turn a hepto Ansible inventory into this node's JSON config",
    load: async () => (await import('./commands/import-inventory')).importInventory,
  },
  {
    words: ['admin', 'init'],
    usage: 'admin init [--admin-key PATH]',
    summary: "create the cluster's admin key pair; print its public half for admin_pub",
    load: async () => (await import('./commands/admin')).adminInit,
  },
  {
    words: ['admin', 'pub'],
    usage: 'admin pub [--admin-key PATH]',
    summary: 'print the public half of the admin key, for admin_pub',
    load: async () => (await import('./commands/admin')).adminPub,
  },
  {
    words: ['admit'],
    usage: 'admit NODE [--identity ID] [--admin-key PATH] | admit --all-current',
    summary: 'sign an admission binding a node name to its identity; the local agent spreads it',
    load: async () => (await import('./commands/admit')).admit,
  },
  {
    words: ['invite'],
    usage: 'invite [--ttl 24h] [--uses 1] [--node NAME] [--admin-key PATH]',
    summary: 'sign an invitation; print the command that joins a new machine with it',
    load: async () => (await import('./commands/invite')).invite,
  },
  {
    words: ['remove'],
    usage: 'remove NODE [--identity ID] [--admin-key PATH]',
    summary: 'sign a removal of a member; every member refuses it from then on, the master deletes the node',
    load: async () => (await import('./commands/admit')).remove,
  },
  {
    words: ['rotate-keys'],
    usage: 'rotate-keys [--switch-in 60s] [--grace 7d] [--admin-key PATH]',
    summary: 'new overlay key and k3s agent token, sealed to every admitted member; all switch at once',
    load: async () => (await import('./commands/rotate-keys')).rotateKeys,
  },
  {
    words: ['doctor'],
    usage: 'doctor [--json] [--config PATH]',
    summary: 'pre-flight checks, with a fix for each failure',
    load: async () => (await import('./commands/doctor')).doctor,
  },
];

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  mesh: { type: 'boolean' },
  node: { type: 'string' },
  'admin-key': { type: 'string' },
  identity: { type: 'string' },
  'all-current': { type: 'boolean' },
  ttl: { type: 'string' },
  uses: { type: 'string' },
  'switch-in': { type: 'string' },
  grace: { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.usage.length));
  return [
    'hepto-agent: pools machines into one self-hosted Kubernetes cluster (gossip mesh, wesher, k3s under Podman).',
    '',
    'Usage: hepto-agent <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  --config PATH          config file (else $HEPTO_CONFIG, else /etc/hepto/hepto.json)',
    '  --log-format FORMAT    plain (journald, default) or json, one event per line',
    '  --log-level LEVEL      debug, info, warn or error (default: the config, else info)',
    '  --json                 machine-readable output (status)',
    '  --mesh                 status: the pair matrix (connected, RTT, path MTU) as every member sees it',
    '  --admin-key PATH       the admin key file (admin commands; default /etc/hepto/admin.key)',
    '  --identity ID          admit, remove: the identity key, ed25519:<base64> (status shows it)',
    '  --all-current          admit: every live member that shows no admission yet',
    '  --ttl DURATION         invite: how long it is valid (90s, 30m, 24h, 7d; default 24h, at most 30d)',
    '  --uses N               invite: how many machines may use it (default 1)',
    '  --node NAME            invite: the only node name it admits',
    '  --switch-in DURATION   rotate-keys: when every member moves to the new keys (default 60s)',
    '  --grace DURATION       rotate-keys: how long after that the old overlay key is still taken (default 7d)',
    '  -h, --help             this help',
    '  -V, --version          the agent version',
    '',
    'Exit codes: 0 ok, 1 invalid input or failed check, 2 usage, 3 agent not running, 4 (run) the invitation was refused.',
  ].join('\n');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = (l: string): void => void process.stdout.write(l + '\n');
  const err = (l: string): void => void process.stderr.write(scrub(l) + '\n');
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (values.version) {
      out(AGENT_VERSION);
      return 0;
    }
    const entry = COMMANDS.find((c) => c.words.every((w, i) => positionals[i] === w));
    if (values.help || positionals.length === 0) {
      out(helpText());
      return values.help ? 0 : 2;
    }
    if (!entry) throw new HeptoError('USAGE', `unknown command "${positionals.join(' ')}"`, { hint: 'run hepto-agent --help' });
    const logFormat = values['log-format'] ?? 'plain';
    if (logFormat !== 'plain' && logFormat !== 'json') {
      throw new HeptoError('USAGE', `--log-format must be plain or json, not "${logFormat}"`);
    }
    const logLevel = values['log-level'];
    if (logLevel !== undefined && !['debug', 'info', 'warn', 'error'].includes(logLevel)) {
      throw new HeptoError('USAGE', `--log-level must be debug, info, warn or error, not "${logLevel}"`);
    }
    const ctx: CommandContext = {
      args: positionals.slice(entry.words.length),
      flags: {
        config: values.config,
        json: values.json,
        mesh: values.mesh,
        node: values.node,
        adminKey: values['admin-key'],
        identity: values.identity,
        allCurrent: values['all-current'],
        ttl: values.ttl,
        uses: values.uses,
        switchIn: values['switch-in'],
        grace: values.grace,
        logFormat,
        logLevel: logLevel as CommandContext['flags']['logLevel'],
      },
      env,
      stdout: out,
      stderr: err,
    };
    const command = await entry.load();
    return await command(ctx);
  } catch (e) {
    if (isHeptoError(e)) {
      err(`hepto-agent: ${e.describe()}`);
      if (e.code === 'USAGE') return 2;
      if (e.code === 'AGENT_NOT_RUNNING') return 3;
      if (e.code === 'ENROL_REFUSED') return 4;
      return 1;
    }
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      err(`hepto-agent: ${errorMessage(e)} (run hepto-agent --help)`);
      return 2;
    }
    err(`hepto-agent: internal error: ${errorMessage(e)}`);
    if (env.HEPTO_DEBUG) err(scrub(String((e as Error).stack)));
    return 70;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // `run` keeps the process alive itself; the others exit here.
      if (code !== -1) process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`hepto-agent: internal error: ${errorMessage(e)}\n`);
      process.exitCode = 70;
    },
  );
}
