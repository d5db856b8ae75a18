// The same /health response on Bun.serve, for wrk.ts (run by the bun binary, which
// executes TypeScript directly). Prints "listening <port>".
declare const Bun: {
  serve(options: { port: number; hostname: string; fetch(req: Request): Response }): { port: number };
};

const BODY = `${JSON.stringify({ status: 'ok' })}\n`;
const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(req: Request): Response {
    if (new URL(req.url).pathname === '/health') return new Response(BODY, { headers: { 'Content-Type': 'application/json' } });
    return new Response('not found\n', { status: 404 });
  },
});
console.log(`listening ${server.port} bun`);
