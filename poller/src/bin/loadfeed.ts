import { cliMain } from '../tools/cli.js';
import { runBin } from './run-bin.js';

runBin('loadfeed', cliMain);
