import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { RequestMeta } from '../runs/audit-model.js';

/** One fingerprint per connection: keep-alive requests on it share the certificate. */
const fingerprints = new WeakMap<Socket, string | null>();

/**
 * Where a request came from, for the audit log: the client address, its user agent, and the
 * SHA-256 fingerprint of its TLS client certificate when it presented one that the configured
 * client CA verified (an unverified certificate proves nothing and is not recorded).
 */
export function requestMeta(req: FastifyRequest): RequestMeta {
  const ua = req.headers['user-agent'];
  return {
    source_ip: req.ip || null,
    user_agent: typeof ua === 'string' && ua !== '' ? ua : null,
    client_cert_fingerprint: clientCertFingerprint(req.raw.socket),
  };
}

function clientCertFingerprint(socket: Socket): string | null {
  const tls = socket as TLSSocket;
  if (!tls.encrypted) return null;
  const known = fingerprints.get(socket);
  if (known !== undefined) return known;
  let fp: string | null = null;
  if (tls.authorized) {
    const cert = tls.getPeerCertificate();
    fp =
      cert && typeof cert.fingerprint256 === 'string' && cert.fingerprint256 !== ''
        ? cert.fingerprint256
        : null;
  }
  fingerprints.set(socket, fp);
  return fp;
}
