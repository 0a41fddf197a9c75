// The demo market feed used by `tickfan serve --demo`.
export { MarketSim, demoSymbols, rng, type MarketSimOptions } from './market-sim.js';
