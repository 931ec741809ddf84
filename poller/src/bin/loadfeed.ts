#!/usr/bin/env node
import { cliMain } from '../cli.js';
import { runBin } from './run-bin.js';

runBin('loadfeed', cliMain);
