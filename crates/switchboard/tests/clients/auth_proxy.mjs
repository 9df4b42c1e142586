// A loopback proxy that adds `Authorization: Bearer <token>` to every
// request and passes everything else (Host and Origin included) through
// unchanged, streaming both ways. The conformance suite cannot send an
// Authorization header; this lets it test a protected endpoint without any
// auth-bypass switch in the product.
//
// usage: node auth_proxy.mjs --target http://127.0.0.1:PORT --token TOKEN
// prints "proxy listening on http://127.0.0.1:PORT" once ready.
import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i < 0 || i + 1 >= args.length) {
    console.error(`missing ${name}`);
    process.exit(2);
  }
  return args[i + 1];
};
const target = new URL(opt('--target'));
const token = opt('--token');

const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.rawHeaders);
      up.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy: ${e.message}`);
  });
  req.pipe(upstream);
  res.on('close', () => upstream.destroy());
});
server.listen(0, '127.0.0.1', () => {
  console.log(`proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
