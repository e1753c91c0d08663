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
const { pathToFileURL } = require('url');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', '.cache', 'reference'));
const load = createRequire(path.join(dir, 'package.json'));

const lazy = (name) => {
  let module;
  return () => (module ??= load(name));
};
const twitterText = lazy('twitter-text');
// @atproto/api and snudown-js are ES modules: imported once, by their resolved path.
const lazyImport = (name) => {
  let module;
  return () => (module ??= import(pathToFileURL(load.resolve(name)).href));
};
const atprotoApi = lazyImport('@atproto/api');
const snudown = lazyImport('snudown-js');

// RichText's own detection, before mentions are resolved to DIDs (a mention's `did` holds the handle).
const detectFacets = async ({ text }) => {
  const { RichText } = await atprotoApi();
  const rt = new RichText({ text });
  rt.detectFacetsWithoutResolution();
  return rt.facets ?? [];
};

const METHODS = {
  // twitter-text's parseTweet with its default (v3) config: weightedLength, valid, ranges.
  'twitter.parseTweet': ({ text }) => twitterText().parseTweet(text),
  // The URLs twitter-text links, with UTF-16 indices.
  'twitter.extractUrlsWithIndices': ({ text }) => twitterText().extractUrlsWithIndices(text),
  // @atproto/api: RichText.detectFacetsWithoutResolution(), the facets sorted by byteStart.
  'bluesky.detectFacets': detectFacets,
  // @atproto/api: RichText.graphemeLength (Intl.Segmenter's extended grapheme clusters).
  'bluesky.graphemeLength': async ({ text }) => new (await atprotoApi()).RichText({ text }).graphemeLength,
  // The official lexicons bundled with @atproto/api (validated by @atproto/lexicon, its dependency):
  // the record check a PDS makes on a JSON record, `lexicons.assertValidRecord(nsid, jsonToLex(record))`
  // (jsonToLex reads `{"$link": ...}` as a CID and a blob object as a BlobRef).
  'bluesky.validateRecord': async ({ record, nsid = 'app.bsky.feed.post' }) => {
    const { lexicons, jsonToLex } = await atprotoApi();
    try {
      lexicons.assertValidRecord(nsid, jsonToLex(record));
      return { valid: true, error: null };
    } catch (e) {
      return { valid: false, error: String((e && e.message) || e) };
    }
  },
  // snudown-js: Reddit's usertext renderer, Markdown to HTML.
  'snudown.markdown': async ({ text }) => (await snudown()).markdown(text),
  // Several calls in one request (one round trip): [{method, params}, ...] -> [result, ...].
  'batch': async ({ calls }) => {
    const results = [];
    for (const { method, params } of calls) {
      if (!METHODS[method] || method === 'batch') throw new Error(`unknown method in batch: ${method}`);
      results.push(await METHODS[method](params || {}));
    }
    return results;
  },
  'versions': () => Object.fromEntries(
    ['twitter-text', 'twemoji-parser', '@atproto/api', '@atproto/lexicon', 'snudown-js'].map((name) => {
      try {
        return [name, require(path.join(dir, 'node_modules', name, 'package.json')).version];
      } catch (e) {
        return [name, null];
      }
    }),
  ),
};

const reply = (message) => process.stdout.write(JSON.stringify(message) + '\n');

const answer = async (line) => {
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
};

// Requests are answered one after the other, in the order they came (some methods are async), and
// every pending answer is written before the process exits when stdin closes.
let pending = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  pending = pending.then(() => answer(line));
});
rl.on('close', () => pending.then(() => process.exit(0)));
