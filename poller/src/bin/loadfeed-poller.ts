import { pollerMain } from '../main.js';
import { runBin } from './run-bin.js';

runBin('loadfeed-poller', pollerMain);
