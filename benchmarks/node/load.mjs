// A bounded load run for bench_authz.py: GET the URL N times with C requests in flight over keep-alive
// connections, with the given headers; prints {"seconds": ..., "statuses": {"200": n, ...}} on stdout.
import http from 'node:http'

const [url, total, concurrency, headers] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]),
  JSON.parse(process.argv[5] || '{}')]
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
const statuses = {}
let sent = 0

function one () {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent, headers }, (response) => {
      response.resume()
      response.on('end', () => {
        statuses[response.statusCode] = (statuses[response.statusCode] || 0) + 1
        resolve()
      })
    })
    request.on('error', reject)
  })
}

async function worker () {
  while (sent < total) {
    sent += 1
    await one()
  }
}

const start = process.hrtime.bigint()
await Promise.all(Array.from({ length: concurrency }, worker))
const seconds = Number(process.hrtime.bigint() - start) / 1e9
agent.destroy()
process.stdout.write(JSON.stringify({ seconds, statuses }))
