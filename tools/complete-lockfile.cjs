// The registry mirror these machines use serves only linux-x64 builds, so `npm install`
// leaves other platforms' optional packages (nx, polars, esbuild natives) out of
// package-lock.json and `npm ci` then refuses the lockfile. This adds the missing optional
// entries; npm skips them on install. Run after every `npm install`: `npm run lock:complete`.
const fs = require('fs');
const lock = JSON.parse(fs.readFileSync('package-lock.json'));
const pk = lock.packages; let added = 0;
for (const [loc, meta] of Object.entries(pk)) {
  for (const [name, range] of Object.entries(meta.optionalDependencies || {})) {
    const base = loc === '' ? '' : loc + '/';
    if (pk[`${base}node_modules/${name}`] || pk[`node_modules/${name}`]) continue;
    pk[`node_modules/${name}`] = { version: range.replace(/^[\^~]/, ''), optional: true };
    added++;
  }
}
fs.writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
console.log('added', added);
