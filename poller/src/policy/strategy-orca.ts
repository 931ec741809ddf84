// orca: gRPC's weighted round robin (proposal A58), reproduced rule for rule
// so it is a faithful baseline to compare loadfeed's strategies against.
//   weight = qps / (utilisation + error_utilization_penalty × eps / qps)
// - A report with qps = 0 or utilisation = 0 is ignored (the weight is not
//   updated); so is one whose quotient overflows (denormal utilisation).
// - blackout_period: a server's weight is not used until it has been
//   reporting for this long (non_empty_since), so a freshly started server is
//   not flooded on the strength of its idle first reports.
// - weight_expiration_period: a weight not refreshed for this long is
//   dropped and the blackout starts again when reports resume.
// - A server without a usable weight gets the mean of those with one; with
//   fewer than two usable weights every server is treated equally (round robin).
// Inputs, as A58 takes them from an ORCA report, with what a server without
// application metrics has instead (each weight's reason names the ones used):
// - utilisation: application_utilization when > 0, else cpu_utilization (the
//   agent's CPU, or an agentless server's ORCA CPU);
// - qps: the application's rps when reported, else the host's accepted
//   connections per second;
// - eps: the application's eps when reported, else 0.
// The 0.01–10 × mean clamp of gRPC's scheduler is the `meanBand` wrapper.
// For: comparing with what proxyless gRPC clients do.
import type { z } from 'zod';
import type { orcaSchema } from './schema.js';
import { fmt, type NodeMetrics, type Score, type Strategy } from './strategy.js';

type OrcaConfig = z.output<typeof orcaSchema>;

interface EndpointWeight {
  weight: number;
  /** The A58 formula with the inputs of the last usable report. */
  why: string;
  nonEmptySince: number | null;
  lastUpdated: number | null;
  sampleId: string;
  connectedAt: number;
}

export const orcaStrategy: Strategy<OrcaConfig, Map<string, EndpointWeight>> = {
  name: 'orca',
  createState: () => new Map(),
  weigh(config, servers, state, now) {
    const weights = servers.map((s): { w: number; why: string } => {
      let e = state.get(s.key);
      if (!e || e.connectedAt !== s.connectedAt) {
        // A new connection is a new subchannel in gRPC terms: fresh state.
        e = { weight: 0, why: '', nonEmptySince: null, lastUpdated: null, sampleId: '', connectedAt: s.connectedAt };
        state.set(s.key, e);
      }
      if (e.sampleId !== s.sampleId) {
        e.sampleId = s.sampleId;
        const x = orcaInputs(s.metrics);
        const weight = x.qps / (x.utilization + (x.eps / x.qps) * config.errorUtilizationPenalty);
        if (x.utilization > 0 && x.qps > 0 && Number.isFinite(weight)) {
          e.weight = weight;
          e.why = `${x.qpsFrom} ${fmt(x.qps)} / (${x.utilizationFrom} ${fmt(x.utilization)} + ${x.epsFrom} ${fmt(x.eps)}/qps × ${fmt(config.errorUtilizationPenalty)})`;
          e.lastUpdated = s.sampleAt;
          e.nonEmptySince ??= s.sampleAt;
        }
      }
      if (e.lastUpdated === null) return { w: 0, why: 'no report with qps and utilisation yet' };
      if (now - e.lastUpdated >= config.weightExpirationPeriod) {
        e.nonEmptySince = null;
        return { w: 0, why: 'weight expired' };
      }
      if (config.blackoutPeriod > 0 && (e.nonEmptySince === null || now - e.nonEmptySince < config.blackoutPeriod)) {
        return { w: 0, why: 'blackout period' };
      }
      return { w: e.weight, why: e.why };
    });
    for (const key of state.keys()) if (!servers.some((s) => s.key === key)) state.delete(key);
    const usable = weights.filter((x) => x.w > 0).length;
    if (usable < 2) return weights.map((x): Score => ({ score: 1, reason: `round robin: ${usable} usable weight${usable === 1 ? '' : 's'} (${x.why})` }));
    return weights.map((x): Score => (x.w > 0 ? { score: x.w, reason: x.why } : { score: null, reason: `mean weight: ${x.why}` }));
  },
};

/** A58's inputs from a server's metrics, and which metric gave each (named in each weight's reason). */
function orcaInputs(m: NodeMetrics): { utilization: number; utilizationFrom: string; qps: number; qpsFrom: string; eps: number; epsFrom: string } {
  const app = m.applicationUtilization !== null && m.applicationUtilization > 0;
  return {
    utilization: app ? (m.applicationUtilization ?? 0) : m.cpuUtilization,
    utilizationFrom: app ? 'app_util' : 'cpu',
    qps: m.rpsFractional ?? m.tcpAcceptsPerSecond ?? 0,
    qpsFrom: m.rpsFractional !== null ? 'rps' : 'accepts',
    eps: m.eps ?? 0,
    epsFrom: m.eps !== null ? 'eps' : 'no eps',
  };
}
