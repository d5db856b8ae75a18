'use strict';
// The compiled kqueue addon (on Linux: a stub whose probe() reports unsupported): a prebuild from prebuilds/ when one matches this
// platform, otherwise the copy built from source at install time.
module.exports = require('node-gyp-build')(__dirname);
