// Where an endpoint may point: http or https, and with WEBHOOK_DENY_PRIVATE no private or loopback address
// (a literal host here; the addresses a name resolves to are checked again before each attempt).
import { isIP } from "node:net";
import { isPrivateAddress } from "../../domain/webhooks.js";
import { invalid } from "../../errors.js";

export function checkEndpointUrl(text: string, field: string, denyPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid([{ field, message: "must be an absolute http or https URL" }]);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid([{ field, message: "must be an http or https URL" }]);
  if (url.username || url.password) throw invalid([{ field, message: "must not carry credentials (the signature authenticates each request)" }]);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (denyPrivate && (isIP(host) !== 0 || host === "localhost" || host.endsWith(".localhost")) && isPrivateAddress(host))
    throw invalid([{ field, message: "must not be a private or loopback address (WEBHOOK_DENY_PRIVATE=true)" }]);
  return url;
}
