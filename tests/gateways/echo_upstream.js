// The API behind the gateway in tests/gateways: written for node's http module, so nothing Python sits between
// the gateway and what it protects. Every request is answered with what arrived (method, target as sent, headers
// in order) and kept; GET /__seen (asked directly, never through the gateway) returns and forgets the kept ones.
// A websocket handshake (node's 'upgrade' event) is kept too (upgraded: true) and answered 101, then closed: enough
// for a gateway to have passed it on, with no websocket library on either side.
'use strict';
const crypto = require('crypto');
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
server.on('upgrade', (request, socket) => {
  seen.push({method: request.method, target: request.url, headers: request.rawHeaders, body: '', upgraded: true});
  const key = request.headers['sec-websocket-key'] || '';
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
             'Sec-WebSocket-Accept: ' + accept + '\r\n\r\n');
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
