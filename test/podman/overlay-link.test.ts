/**
 * The overlay link against real Podman, nsenter and ip: the agent makes
 * `wgoverlay` in wesher's namespace before k3s starts, keeps its MTU at
 * mtu - 80 whatever wesher sets, and restarts k3s after wesher comes back.
 * The k3s stand-in exits, as k3s does, when its flannel interface has no
 * address (k3s #8424), so without the link no k3s here would keep running.
 * Podman runs in its own network namespace (harness NETNS), so this "host"
 * network is not the machine's. This kernel has no WireGuard: the harness
 * sets HEPTO_TEST_LINK_KIND=veth, the only difference from production.
 */
import assert from 'node:assert/strict';
import { overlayIp, type Supervisor } from '../../agent/runtime/supervisor';
import { view } from '../unit/runtime/fixtures';
import { waitFor } from './harness';
import { podmanSuite } from './suite';

interface IpLink {
  mtu: number;
  flags: string[];
  addr_info: Array<{ local: string; prefixlen: number }>;
}

describe('podman: the overlay link before k3s (real nsenter and ip)', function () {
  this.timeout(120_000);
  const t = podmanSuite();
  let sup: Supervisor;

  const link = async (): Promise<IpLink | null> => {
    const out = await t.h.ip('-j', 'addr', 'show', 'dev', 'wgoverlay').catch(() => null);
    return out ? ((JSON.parse(out) as IpLink[])[0] ?? null) : null;
  };
  const started = async (name: string): Promise<number> => Date.parse((await t.h.inspect(name))!.State.StartedAt);

  it('a lone master: the agent makes wgoverlay with the overlay IP at mtu - 80; k3s starts only then, and keeps running', async () => {
    const cfg = t.config('plone', { mtu: 1400 });
    sup = t.supervisor(cfg, { linkCheckMs: 300 });
    sup.setCluster(view(['plone', 'alive', { addresses: [`[${t.h.hostAddress}]:7947`] }]));
    await sup.start();
    await waitFor(() => sup.status().containers.every((c) => c.state === 'running'), { what: 'wesher and k3s running', timeoutMs: 30_000 });

    const ip = overlayIp('plone', cfg.overlay_net);
    const l = (await link())!;
    assert.ok(l, 'wgoverlay exists though wesher has no peer');
    assert.equal(l.mtu, 1320);
    assert.ok(l.flags.includes('UP'));
    assert.deepEqual(
      l.addr_info.filter((a) => !a.local.startsWith('fe80')).map((a) => `${a.local}/${a.prefixlen}`),
      [`${ip}/32`],
    );
    assert.ok((await started('hepto-plone-k3s')) >= (await started('hepto-plone-wesher')), 'k3s after wesher');
    const wesher = sup.status().containers.find((c) => c.role === 'wesher')!;
    assert.deepEqual(wesher.overlay, { interface: 'wgoverlay', addresses: [`${ip}/32`], mtu: 1320, up: true }, 'status shows the MTU in force');
    // k3s stays up: the stand-in, like k3s, exits when flannel starts (5 s in) and finds no address on its interface.
    await new Promise((r) => setTimeout(r, 6_500));
    assert.equal((await t.h.inspect('hepto-plone-k3s'))!.State.Status, 'running');
    assert.equal(sup.status().containers.find((c) => c.role === 'k3s')!.restarts, 0);
  });

  it("wesher's MTU reset (1420 at every membership change) is set back within a few seconds", async () => {
    await t.h.ip('link', 'set', 'dev', 'wgoverlay', 'mtu', '1420');
    assert.equal((await link())!.mtu, 1420);
    await waitFor(async () => (await link())?.mtu === 1320, { what: 'MTU set back to 1320', timeoutMs: 10_000 });
    // The line is logged once `ip` has returned to the agent, which can be a moment after this test sees the link.
    await waitFor(() => t.lines.some((x) => /overlay link set/.test(x) && /had_mtu=1420/.test(x)), {
      what: 'the fix logged with what it was',
      timeoutMs: 5_000,
    });
  });

  it('wesher restarted (its link deleted, as wesher does on SIGTERM): link made again, then k3s restarted once', async () => {
    const k0 = (await t.h.inspect('hepto-plone-k3s'))!;
    const w0 = (await t.h.inspect('hepto-plone-wesher'))!;
    await t.h.ip('link', 'del', 'wgoverlay');
    process.kill(w0.State.Pid, 'SIGKILL');
    await waitFor(
      async () => {
        const k = await t.h.inspect('hepto-plone-k3s');
        return k && k.State.Status === 'running' && k.State.StartedAt !== k0.State.StartedAt;
      },
      { what: 'k3s restarted after wesher', timeoutMs: 30_000 },
    );
    assert.ok((await started('hepto-plone-k3s')) >= (await started('hepto-plone-wesher')), 'k3s restarted after the new wesher');
    assert.equal((await link())?.mtu, 1320, 'link back');
    assert.equal((await t.h.inspect('hepto-plone-k3s'))!.Id, k0.Id, 'restarted, not recreated');
    const once = (await t.h.inspect('hepto-plone-k3s'))!.State.StartedAt;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await t.h.inspect('hepto-plone-k3s'))!.State.StartedAt, once, 'restarted once, not again and again');
    assert.ok(
      t.lines.some((x) => /restarting container .*hepto-plone-k3s.*flannel/.test(x)),
      t.lines.filter((x) => /restart/.test(x)).join('\n'),
    );
  });
});
