// Bundled by esbuild (wire-browser.mjs) and run in headless Chromium: the SDK's
// decoding of protocol 1 and 2 frames against JSON.parse, per update.
// MarketSim unrefs its timer (Node): give browser timer ids an unref() that does nothing.
const setIntervalBrowser = globalThis.setInterval;
globalThis.setInterval = (...args) => Object.assign(new Number(setIntervalBrowser(...args)), { unref() {} });

import { demoUpdates, fanoutUpdates, prepareCpu, runCpu } from './wire-forms.mjs';

globalThis.tickfanWireCpu = ({ updates, repeat }) => ({
  demo: runCpu(prepareCpu(demoUpdates({ count: updates })), { repeat, only: ['decode'] }),
  fanout: runCpu(prepareCpu(fanoutUpdates({ count: updates })), { repeat, only: ['decode'] }),
  crossOriginIsolated: globalThis.crossOriginIsolated === true,
});
