// The runtime configuration: config.json beside the page, written at deploy time (CloudFront) or
// served by the local gateway, so the same files serve every stage. Without one, the API is on
// the page's own origin.

const SAME_ORIGIN_BASE_URL = "/v1";
let loading = null;

export function loadConfig() {
  loading ??= fetch("config.json", { cache: "no-cache" })
    .then((response) => (response.ok ? response.json() : {}))
    .catch(() => ({}));
  return loading;
}

export async function apiUrl(path) {
  const base = (await loadConfig()).apiBaseUrl || SAME_ORIGIN_BASE_URL;
  return `${base.replace(/\/+$/, "")}${path}`;
}
