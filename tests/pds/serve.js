'use strict'
// Local Bluesky reference server for oneyearago's integration tests: an in-memory did:plc
// directory (@did-plc/server, Database.mock()) and the reference PDS (@atproto/pds, SQLite + disk
// blobstore) in one node process, every listener bound to 127.0.0.1 (see loopback.js).
//
// Started by tests/pds_harness.py; modules resolve from the install dir made by
// scripts/install-pds.sh (run with NODE_PATH=<install dir>/node_modules or from that dir).
//
// Environment:
//   PDS_PORT, PLC_PORT                ports of the PDS and of the PLC directory (required)
//   PDS_DATA_DIRECTORY                data dir (required); blobs go to PDS_BLOBSTORE_DISK_LOCATION,
//                                     default <PDS_DATA_DIRECTORY>/blobs
//   PDS_* (hostname, secrets, ...)    read by @atproto/pds itself (readEnv)
//   ONEYEARAGO_PDS_MAX_SECONDS        hard cap on the lifetime of this process (default 3600)
//   ONEYEARAGO_PDS_PARENT_PID         pid to watch (default: the parent process); exit when it is gone
//
// Prints one JSON line {"ready":true,...} on stdout once both servers answer, exits 0 on
// SIGTERM/SIGINT, on the death of its parent and at the lifetime cap, 1 on a startup error.
require('./loopback')

const fs = require('node:fs')
const path = require('node:path')

const log = (msg) => console.error(`[serve.js ${new Date().toISOString()}] ${msg}`)

const intEnv = (name, dflt) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') {
    if (dflt === undefined) throw new Error(`${name} is required`)
    return dflt
  }
  const n = parseInt(raw, 10)
  if (!Number.isInteger(n) || n < 0 || String(n) !== raw.trim()) throw new Error(`${name} must be an integer, got ${raw}`)
  return n
}

let stopping = false
let plcServer = null
let pds = null

const stop = async (why, code = 0) => {
  if (stopping) return
  stopping = true
  log(`stopping: ${why}`)
  // Never hang on shutdown: a stuck destroy() must not leave the process behind.
  setTimeout(() => { log('shutdown took too long, exiting'); process.exit(code || 2) }, 10000).unref()
  if (pds) await pds.destroy().catch((e) => log(`pds.destroy: ${e && e.stack || e}`))
  if (plcServer) await plcServer.destroy().catch((e) => log(`plc.destroy: ${e && e.stack || e}`))
  process.exit(code)
}

process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGHUP', () => stop('SIGHUP'))

// Watchdogs, installed before the (slow) startup so they also cover a hung start.
const maxSeconds = intEnv('ONEYEARAGO_PDS_MAX_SECONDS', 3600)
if (maxSeconds > 0) {
  setTimeout(() => stop(`max lifetime of ${maxSeconds}s reached`), maxSeconds * 1000).unref()
}
const initialPpid = process.ppid
const watchedPid = intEnv('ONEYEARAGO_PDS_PARENT_PID', initialPpid)
const alive = (pid) => {
  try { process.kill(pid, 0); return true } catch (e) { return e.code === 'EPERM' }
}
// Not unref'd on purpose: it keeps checking for as long as the servers run.
const watchdog = setInterval(() => {
  if (process.ppid !== initialPpid || !alive(watchedPid)) {
    clearInterval(watchdog)
    stop(`parent process ${watchedPid} is gone`)
  }
}, 500)

const main = async () => {
  const plcPort = intEnv('PLC_PORT')
  intEnv('PDS_PORT')
  const dataDir = process.env.PDS_DATA_DIRECTORY
  if (!dataDir) throw new Error('PDS_DATA_DIRECTORY is required')
  process.env.PDS_BLOBSTORE_DISK_LOCATION ||= path.join(dataDir, 'blobs')
  fs.mkdirSync(process.env.PDS_BLOBSTORE_DISK_LOCATION, { recursive: true })

  const plc = require('@did-plc/server')
  const { PDS, envToCfg, envToSecrets, readEnv } = require('@atproto/pds')
  const pkg = require('@atproto/pds/package.json')

  plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: plcPort })
  await plcServer.start()
  process.env.PDS_DID_PLC_URL = `http://127.0.0.1:${plcPort}`

  const env = readEnv()
  env.version ||= pkg.version
  const cfg = envToCfg(env)
  pds = await PDS.create(cfg, envToSecrets(env))
  await pds.start()
  if (stopping) return
  console.log(JSON.stringify({
    ready: true,
    pid: process.pid,
    pds: `http://127.0.0.1:${cfg.service.port}`,
    plc: process.env.PDS_DID_PLC_URL,
    version: pkg.version,
    node: process.version,
  }))
}

main().catch((e) => {
  log(`startup failed: ${e && e.stack || e}`)
  stop('startup error', 1)
})
