// Typed messages of loadfeed.agent.v1, generated from v1/ by pbjs/pbts at build
// time. `./numbers.js` must be evaluated first (see there).
import './numbers.js';
import { loadfeed } from '../gen/loadfeed.js';

export const v1 = loadfeed.agent.v1;

export const AgentMessage = v1.AgentMessage;
export type AgentMessage = loadfeed.agent.v1.AgentMessage;
export const PollerMessage = v1.PollerMessage;
export type PollerMessage = loadfeed.agent.v1.PollerMessage;
export const Hello = v1.Hello;
export type Hello = loadfeed.agent.v1.Hello;
export type HelloInit = loadfeed.agent.v1.IHello;
export const Sample = v1.Sample;
export type Sample = loadfeed.agent.v1.Sample;
export type SampleInit = loadfeed.agent.v1.ISample;
export const ServiceLoad = v1.ServiceLoad;
export type ServiceLoad = loadfeed.agent.v1.ServiceLoad;
export const ServiceInfo = v1.ServiceInfo;
export type ServiceInfo = loadfeed.agent.v1.ServiceInfo;
export const Ack = v1.Ack;
export type Ack = loadfeed.agent.v1.Ack;
export const Config = v1.Config;
export type Config = loadfeed.agent.v1.Config;
export const Scope = v1.Scope;
export type Scope = loadfeed.agent.v1.Scope;
