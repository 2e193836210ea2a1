// Loads a CLI bundle (dist/berth-oci.cjs or dist/berth.cjs) with V8's code cache: a cold start then
// skips parsing and compiling most of the bundle (~15-20 ms of ~110 here). The cache is
// written after the first create/run/exec that finds none (or finds it stale, e.g. after a
// rebuild), so it holds the functions a container start uses. Any cache problem only costs
// speed: V8 rejects a cache that does not match the source or itself.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { wrap } = require('module');

// bin/berth-oci and bin/berth name their bundle and the commands whose code the cache should
// hold (the hot paths: a container start).
const bundle = process.env.BERTH_LAUNCH_BUNDLE || 'berth-oci';
const hot = (process.env.BERTH_LAUNCH_HOT || 'create,run,exec').split(',');
delete process.env.BERTH_LAUNCH_BUNDLE;
delete process.env.BERTH_LAUNCH_HOT;
const file = path.join(__dirname, '..', 'dist', `${bundle}.cjs`);
const cacheFile = `${file}.cache`;
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  // first run, or not readable: compile from source
}
const script = new vm.Script(wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
const command = process.argv.slice(2).find((a) => !a.startsWith('-') && !/\//.test(a));
if ((!cachedData || script.cachedDataRejected) && hot.includes(command)) {
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  });
}
const mod = { exports: {}, filename: file, id: file, loaded: false, children: [], paths: [] };
script.runInThisContext().call(mod.exports, mod.exports, require, mod, file, path.dirname(file));
