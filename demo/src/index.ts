export { demoMain, DEMO_BACKENDS, DEMO_LOAD, DEMO_WORK_MS } from './main.js';
export { renderJson, renderTable } from './render.js';
export type { DemoServerView, DemoView } from './render.js';
