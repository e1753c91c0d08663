// The independent reference implementations, served to the Python tests over stdin/stdout.
//
// One JSON object a line in: {"id": 1, "method": "twitter.parseTweet", "params": {...}}
// One JSON object a line out: {"id": 1, "result": ...} or {"id": 1, "error": "message"}.
// The packages are loaded from the install directory given as the first argument (default
// <repo>/.cache/reference, see scripts/install-reference.sh). Add a platform by adding entries to
// METHODS; each takes the params object and returns a JSON-serialisable result (or a promise).
'use strict';

const path = require('path');
const readline = require('readline');
const { createRequire } = require('module');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', '.cache', 'reference'));
const load = createRequire(path.join(dir, 'package.json'));

const lazy = (name) => {
  let module;
  return () => (module ??= load(name));
};
const twitterText = lazy('twitter-text');

const METHODS = {
  // twitter-text's parseTweet with its default (v3) config: weightedLength, valid, ranges.
  'twitter.parseTweet': ({ text }) => twitterText().parseTweet(text),
  // The URLs twitter-text links, with UTF-16 indices.
  'twitter.extractUrlsWithIndices': ({ text }) => twitterText().extractUrlsWithIndices(text),
  'versions': () => Object.fromEntries(
    ['twitter-text', 'twemoji-parser', '@atproto/api', 'snudown-js'].map((name) => {
      try {
        return [name, require(path.join(dir, 'node_modules', name, 'package.json')).version];
      } catch (e) {
        return [name, null];
      }
    }),
  ),
};

const reply = (message) => process.stdout.write(JSON.stringify(message) + '\n');

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', async (line) => {
  let id = null;
  try {
    const request = JSON.parse(line);
    id = request.id;
    const method = METHODS[request.method];
    if (!method) throw new Error(`unknown method ${request.method}`);
    reply({ id, result: await method(request.params || {}) });
  } catch (e) {
    reply({ id, error: String((e && e.stack) || e) });
  }
});
rl.on('close', () => process.exit(0));
