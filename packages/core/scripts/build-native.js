#!/usr/bin/env node
'use strict';
// Incremental source build of a backend addon for development and `npm test`:
// configure once, then let make rebuild only what changed (engine sources included).
// Installs from npm use node-gyp-build instead, which prefers a prebuild.
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const gyp = (args) => execFileSync(process.execPath, [nodeGyp, ...args], { stdio: 'inherit' });
if (!existsSync(join(process.cwd(), 'build', 'Makefile'))) gyp(['configure']);
gyp(['build', '--jobs', 'max']);
