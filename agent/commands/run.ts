import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config/load';
import type { HeptoConfig } from '../../shared/config/types';
import { createLogger, type Logger } from '../../shared/log';
import { errorMessage } from '../../shared/errors';
import { Agent } from '../daemon/agent';
import { enrolIfInvited } from '../daemon/enrolment';
import { NoRuntime, type RuntimeDriver } from '../daemon/runtime-seam';
import { createNotifier } from '../daemon/sd-notify';
import { configPath, type Command } from './types';

async function makeRuntime(config: HeptoConfig, logger: Logger): Promise<RuntimeDriver> {
  if (config.runtime === 'none') return new NoRuntime();
  const { Supervisor } = await import('../runtime/supervisor');
  return new Supervisor({ config, clock: systemClock, logger: logger.child('runtime') });
}

async function overlayIpFn(): Promise<(name: string, net: string) => string | null> {
  const { overlayIp } = await import('../runtime/overlay-ip');
  return (name, net) => {
    try {
      return overlayIp(name, net);
    } catch {
      return null;
    }
  };
}

/** `hepto-agent run`: the daemon in the foreground. Resolves when it has stopped. */
export const run: Command = async (ctx) => {
  const file = configPath(ctx);
  const { config, warnings } = await loadConfig(file);
  const logger = createLogger({
    format: ctx.flags.logFormat,
    level: ctx.flags.logLevel ?? config.log_level,
    syslogPrefix: ctx.flags.logFormat === 'plain' && Boolean(ctx.env.JOURNAL_STREAM),
  });
  for (const w of warnings) logger.warn(w);
  const notifier = createNotifier({ env: ctx.env, logger: logger.child('systemd') });
  // A machine installed with an invitation enrols first; a signal meanwhile just ends it (nothing to undo).
  const quit = (): void => process.exit(0);
  process.once('SIGTERM', quit);
  process.once('SIGINT', quit);
  const ready = await enrolIfInvited(file, config, logger.child('enrol'), {
    now: () => systemClock.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    status: (line) => notifier.status(line),
  });
  process.off('SIGTERM', quit);
  process.off('SIGINT', quit);
  const agent = new Agent({
    config: ready,
    clock: systemClock,
    logger,
    runtime: await makeRuntime(ready, logger),
    notifier,
    overlayIp: await overlayIpFn(),
  });

  let stopping: Promise<void> | null = null;
  const done = new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn('second signal: exiting now', { signal: sig });
        process.exit(1);
      }
      logger.info('signal received', { signal: sig });
      stopping = agent.stop({ leave: true }).then(
        () => resolve(0),
        (e) => {
          logger.error('shutdown failed', { error: errorMessage(e) });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  process.on('uncaughtException', (e) => logger.error('uncaught exception (kept running)', { error: errorMessage(e), stack: e.stack?.split('\n')[1]?.trim() }));
  process.on('unhandledRejection', (e) => logger.error('unhandled rejection (kept running)', { error: errorMessage(e) }));

  try {
    await agent.start();
  } catch (e) {
    await agent.stop({ leave: false }).catch(() => undefined);
    throw e;
  }
  const code = await done;
  // Sockets are closed; nothing should keep the loop alive, but a stuck handle must not hang systemd.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
};
