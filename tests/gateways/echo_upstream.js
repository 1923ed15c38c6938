// The API behind the gateway in tests/gateways: written for node's http module, so nothing Python sits between
// the gateway and what it protects. Every request is answered with what arrived (method, target as sent, headers
// in order) and kept; GET /__seen (asked directly, never through the gateway) returns and forgets the kept ones.
'use strict';
const http = require('http');

const seen = [];
const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    if (request.url === '/__seen') {
      const body = JSON.stringify(seen.splice(0));
      response.writeHead(200, {'content-type': 'application/json'});
      response.end(body);
      return;
    }
    const received = {
      method: request.method,
      target: request.url,
      headers: request.rawHeaders,
      body: Buffer.concat(chunks).toString('latin1'),
    };
    seen.push(received);
    response.writeHead(200, {'content-type': 'application/json'});
    response.end(JSON.stringify(received));
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
