// The web console's files (packages/logcaster-server/console: plain HTML, CSS and JS, no
// build step), read once when the HTTP port starts and answered from memory with an
// ETag, so a reload costs a 304.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import type { HttpRequest, HttpResponse } from '@logcaster/http';

export const CONSOLE_DIR = path.resolve(__dirname, '..', '..', '..', 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export class ConsoleAssets {
  private readonly assets = new Map<string, Asset>();

  constructor(dir = CONSOLE_DIR) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[path.extname(name)];
      if (type === undefined) continue;
      const body = readFileSync(path.join(dir, name));
      const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
      this.assets.set(name === 'index.html' ? '/' : `/${name}`, { body, type, etag });
    }
    if (!this.assets.has('/')) throw new Error(`web console: ${dir}/index.html is missing`);
  }

  /** Answers `req` if it names a console file; false otherwise. */
  serve(req: HttpRequest, res: HttpResponse): boolean {
    const asset = this.assets.get(req.path);
    if (asset === undefined) return false;
    const headers = { ETag: asset.etag, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
    if (req.headers['if-none-match'] === asset.etag) res.send(304, '', asset.type, headers);
    else res.send(200, asset.body, asset.type, headers);
    return true;
  }
}
