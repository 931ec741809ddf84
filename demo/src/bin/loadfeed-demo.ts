import { runBin } from '@loadfeed/poller';
import { demoMain } from '../main.js';

runBin('loadfeed demo', demoMain);
