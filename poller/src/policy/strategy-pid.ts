// pid: a feedback controller in the manner of Dropbox's Robinhood. The
// setpoint is the service's mean load; each server's error is how far its
// own load is above (or below) that mean, and the controller's output
// multiplies the server's weight: above the mean → smaller weight, below →
// larger, until every server runs at the same load. The load signal is the
// worse of CPU (or CPU pressure) and connections in flight, each relative to
// the service mean, so a server that is slow for reasons CPU does not show
// (locks, a slow disk) still sheds traffic.
// For: converging to equal utilisation across servers whose capacity is unknown.
import type { z } from 'zod';
import type { pidSchema } from './schema.js';
import { fmt, type Strategy } from './strategy.js';

type PidConfig = z.output<typeof pidSchema>;

interface Loop {
  weight: number;
  integral: number;
  previousError: number | null;
  sampleId: string;
}

export const pidStrategy: Strategy<PidConfig, Map<string, Loop>> = {
  name: 'pid',
  createState: () => new Map(),
  weigh(config, servers, state) {
    const load = servers.map((s) => Math.max(s.metrics.cpuUtilization, s.metrics.psiCpuSome ?? 0));
    const conns = servers.map((s) => s.metrics.connections);
    const meanLoad = mean(load);
    const known = conns.filter((c): c is number => c !== null);
    const meanConns = known.length === servers.length ? mean(known) : 0;
    const existing = servers.map((s) => state.get(s.key)?.weight).filter((w): w is number => w !== undefined);
    const startAt = existing.length > 0 ? mean(existing) : 1;

    const reasons = servers.map((s, i) => {
      let loop = state.get(s.key);
      if (!loop) {
        loop = { weight: startAt, integral: 0, previousError: null, sampleId: '' };
        state.set(s.key, loop);
      }
      const relLoad = meanLoad > 0 ? (load[i] ?? 0) / meanLoad : 1;
      const relConns = config.useConnections && meanConns > 0 ? (conns[i] ?? 0) / meanConns : 0;
      const signal = Math.max(relLoad, relConns);
      const error = signal - 1;
      if (loop.sampleId !== s.sampleId) {
        loop.sampleId = s.sampleId;
        // Anti-windup: the integral alone may never ask for more than one full step.
        const limit = config.ki > 0 ? config.maxStep / config.ki : 0;
        loop.integral = Math.max(-limit, Math.min(limit, loop.integral + error));
        const derivative = loop.previousError === null ? 0 : error - loop.previousError;
        loop.previousError = error;
        const step = config.kp * error + config.ki * loop.integral + config.kd * derivative;
        loop.weight *= 1 - Math.max(-config.maxStep, Math.min(config.maxStep, step));
      }
      const what = relConns > relLoad ? `connections ${fmt(relConns)}× mean` : `load ${fmt(relLoad)}× mean`;
      return `${what}, error ${error >= 0 ? '+' : ''}${fmt(error)}`;
    });
    for (const key of state.keys()) if (!servers.some((s) => s.key === key)) state.delete(key);
    // Keep the weights' mean at 1 so they neither drift to 0 nor overflow.
    const m = mean(servers.map((s) => state.get(s.key)?.weight ?? 1));
    for (const s of servers) {
      const loop = state.get(s.key);
      if (loop && m > 0) loop.weight /= m;
    }
    return servers.map((s, i) => ({ score: state.get(s.key)?.weight ?? 1, reason: reasons[i] ?? '' }));
  },
};

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}
