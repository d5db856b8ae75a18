'use strict';
// The compiled io_uring addon: a prebuild from prebuilds/ when one matches this
// platform, otherwise the copy built from source at install time. Whether this
// kernel allows io_uring is decided at run time by probe(), not at load time.
module.exports = require('node-gyp-build')(__dirname);
