/**
 * A real Prometheus (Debian's `prometheus` 2.42) scrapes three real agents on
 * loopback (issue 15): PromQL through its HTTP API sees
 * hepto_members{state="alive"} == 3 from each, `promtool check metrics` passes
 * on an endpoint's output, no key appears in it (not even hashed), and after
 * a member is killed the dead count rises in Prometheus. Missing prometheus
 * or promtool fail the test: test/run.sh installs them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AgentCluster, CLUSTER_KEY, OVERLAY_KEY, waitFor, type AgentHandle } from '../../helpers/agent-cluster';
import { freePort, request } from './http';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('metrics: a real Prometheus scrapes three agents', function () {
  this.timeout(90_000);
  let cluster: AgentCluster;
  let prom: ChildProcess | null = null;
  let promLog: string[] = [];
  let promDir = '';
  let promUrl = '';

  before(() => {
    for (const bin of [PROMETHEUS, PROMTOOL]) {
      assert.ok(existsSync(bin), `${bin} is missing: install Debian's prometheus package (test/run.sh does)`);
    }
  });

  beforeEach(() => {
    cluster = new AgentCluster();
    promDir = mkdtempSync(path.join(os.tmpdir(), 'hepto-prom-'));
    promLog = [];
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(`${cluster.dump()}\n--- prometheus\n${promLog.slice(-30).join('')}`);
    if (prom) {
      const p = prom;
      prom = null;
      if (p.exitCode === null && p.signalCode === null) {
        await new Promise<void>((resolve) => {
          const kill = setTimeout(() => p.kill('SIGKILL'), 3000);
          p.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          p.kill('SIGTERM');
        });
      }
    }
    await cluster.cleanup();
    rmSync(promDir, { recursive: true, force: true });
  });

  async function startPrometheus(targets: string[]): Promise<void> {
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const cfg = path.join(promDir, 'prometheus.yml');
    writeFileSync(
      cfg,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: hepto',
        '    static_configs:',
        `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const p = spawn(
      PROMETHEUS,
      [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    prom = p;
    p.stdout?.on('data', (c: Buffer) => promLog.push(c.toString()));
    p.stderr?.on('data', (c: Buffer) => promLog.push(c.toString()));
    await waitFor('Prometheus to be ready', async () => p.exitCode === null && (await request(`${promUrl}/-/ready`, 'GET', 1000)).status === 200, 20_000, 200);
  }

  async function query(q: string): Promise<Sample[]> {
    const a = await request(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    assert.equal(a.status, 200, a.body);
    const doc = JSON.parse(a.body) as { status: string; data: { resultType: string; result: Sample[] } };
    assert.equal(doc.status, 'success', a.body);
    return doc.data.result;
  }

  /** Resolves once the query returns a sample for each of `instances`. */
  function waitForInstances(what: string, q: string, instances: string[], timeoutMs: number): Promise<Sample[]> {
    return waitFor(
      what,
      async () => {
        const r = await query(q);
        const seen = new Set(r.map((s) => s.metric.instance));
        return instances.every((i) => seen.has(i)) ? r : undefined;
      },
      timeoutMs,
      250,
    );
  }

  it('hepto_members{state="alive"} == 3 from each; promtool passes; no key in the output; a kill raises the dead count', async () => {
    const t0 = Date.now();
    const endpoint = (a: AgentHandle): string => String(a.config.metrics_listen);
    const add = async (name: string, anchors: AgentHandle[]): Promise<AgentHandle> => {
      const host = `127.0.0.${10 + cluster.agents.length}`;
      return cluster.add(name, { anchors, host, extra: { metrics_listen: `${host}:${await freePort(host)}` } });
    };
    const alpha = await add('alpha', []);
    const beta = await add('beta', [alpha]);
    const gamma = await add('gamma', [alpha]);
    const agents = [alpha, beta, gamma];
    for (const a of agents) cluster.start(a);
    const instances = agents.map(endpoint);
    await startPrometheus(instances);

    await waitForInstances('Prometheus to see 3 alive members from each agent', 'hepto_members{state="alive"} == 3', instances, 30_000);
    const tAlive = Date.now();
    // Events counted as they happen reach Prometheus too: probe round trips and frames, from every agent.
    await waitForInstances('probe round trips from each agent', 'hepto_probe_rtt_seconds_count > 0', instances, 10_000);
    await waitForInstances(
      'frames received by each agent',
      'hepto_transport_received_frames_total > 0 and hepto_transport_received_bytes_total > 0',
      instances,
      5_000,
    );

    // The exposition as an agent serves it: promtool's lint, and no key in any form.
    const scrape = await request(`http://${endpoint(beta)}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: scrape.body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint finding');
    const identity = JSON.parse(readFileSync(path.join(beta.dir, 'srv', 'beta', 'identity.json'), 'utf8')) as { private: string };
    const secrets = [OVERLAY_KEY, CLUSTER_KEY, identity.private];
    for (const s of secrets) {
      for (const form of [
        s,
        Buffer.from(s).toString('base64'),
        Buffer.from(s).toString('hex'),
        createHash('sha256').update(s).digest('hex'),
        createHash('sha256').update(s).digest('base64'),
      ]) {
        assert.ok(!scrape.body.includes(form), 'a key, or a hash of it, is in the metrics');
      }
    }
    // Other paths are not served.
    assert.equal((await request(`http://${endpoint(beta)}/`)).status, 404);

    // Kill one member: the dead count rises in Prometheus, as seen by the two others.
    await cluster.kill(gamma, 'SIGKILL');
    const survivors = [endpoint(alpha), endpoint(beta)];
    await waitForInstances('Prometheus to see gamma dead from alpha and beta', 'hepto_members{state="dead"} >= 1', survivors, 30_000);
    const deaths = await waitForInstances('the deaths counter to rise', 'hepto_member_deaths_total >= 1', survivors, 5_000);
    assert.equal(deaths.length, 2);
    const tDead = Date.now();
    const size = Buffer.byteLength(scrape.body);
    console.log(
      `      measured: scrape ${size} bytes in ${scrape.ms.toFixed(1)} ms; alive in Prometheus after ${tAlive - t0} ms, dead ${tDead - tAlive} ms after`,
    );
  });
});
