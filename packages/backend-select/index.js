'use strict';
// The compiled select addon: a prebuild from prebuilds/ when one matches this
// platform, otherwise the copy built from source at install time.
module.exports = require('node-gyp-build')(__dirname);
