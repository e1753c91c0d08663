'use strict'
// Preloaded by serve.js. @did-plc/server and @atproto/pds call app.listen(port), which binds every
// interface. Force every listen() in this process onto 127.0.0.1 so the test servers are never
// reachable from outside the machine (check with `ss -ltnp`).
const net = require('node:net')

const LOOPBACK = '127.0.0.1'
const orig = net.Server.prototype.listen

net.Server.prototype.listen = function (...a) {
  if (typeof a[0] === 'number' || (typeof a[0] === 'string' && /^\d+$/.test(a[0]))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof a[1] === 'string') a[1] = LOOPBACK
    else a.splice(1, 0, LOOPBACK)
  } else if (a[0] && typeof a[0] === 'object' && a[0].port !== undefined) {
    // listen({ port, host, ... }[, cb])
    a[0] = { ...a[0], host: LOOPBACK }
  } else if (a.length === 0 || a[0] === undefined || a[0] === null || typeof a[0] === 'function') {
    // listen() / listen(cb): random port on every interface -> random port on loopback
    a.splice(0, a[0] === undefined || a[0] === null ? 1 : 0, 0, LOOPBACK)
  }
  return orig.apply(this, a)
}
