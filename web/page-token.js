// The desk page's token (imported by demo.js): where it comes from — ?token=
// (used as is until it expires), ?tokenUrl= (fetched at connect and again
// before each exp, the SDK refreshing the open connection), or neither (an
// open server: auth off) — and the header's remaining lifetime, from the exp
// of the token the server took last (the SDK's `token` event), starting over
// at each refresh; a token that cannot be had is said there too.

/** A JWT's claims, read but not verified (the server verifies); null for what is not one. */
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/**
 * The page's token source for connect() (a string, a function, or undefined)
 * and the claims of its first token (its `sub` names the desk). With
 * ?tokenUrl=, the first token is fetched before connecting.
 */
export async function pageToken(params) {
  const url = params.get('tokenUrl') || undefined;
  const given = params.get('token') || undefined;
  if (!url) return { url, source: given, claims: given ? claimsOf(given) : null };
  const fetchToken = async () => {
    const res = await fetch(url, { cache: 'no-store' }); // same-origin cookies go along; a token service elsewhere needs CORS
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return (await res.text()).trim();
  };
  let first = await fetchToken().catch((err) => (console.warn(`tickfan desk: no token from ${url}: ${err.message}`), null));
  const claims = first ? claimsOf(first) : null;
  // The first call takes the token fetched already; later ones (each refresh) fetch a fresh one.
  const source = () => (first ? Promise.resolve(first).finally(() => (first = null)) : fetchToken());
  return { url, source, claims };
}

/** Keeps `el` showing the token's lifetime; `log(kind, html)` gets refreshes. Data attributes exp and refreshes are for tests. */
export function showTokenLife(client, el, token, log) {
  let taken = null; // the token the server took last
  let refreshes = 0;
  let problem = '';
  const render = () => {
    if (!token.source) return void (el.textContent = 'no token (auth off)');
    if (!taken) return void (el.textContent = problem ? `token: ${problem}` : 'token: waiting for the server');
    if (taken.expiresAt === null) return void (el.textContent = 'token without expiry');
    const left = Math.max(0, Math.round((taken.expiresAt - Date.now()) / 1000));
    const life = left >= 3600 ? `${Math.floor(left / 3600)}h ${Math.floor((left % 3600) / 60)}m` : left >= 60 ? `${Math.floor(left / 60)}m ${left % 60}s` : `${left}s`;
    el.textContent = left === 0 ? 'token expired' : `token ${life} left${refreshes ? ` · refreshed ${refreshes}×` : ''}`;
    el.classList.toggle('short', left < 60 && !token.url); // a token that is not refreshed is about to end
  };
  client.on('token', (e) => {
    taken = e;
    if (e.refreshed) refreshes++;
    el.dataset.exp = String(e.exp ?? '');
    el.dataset.refreshes = String(refreshes);
    render();
    if (e.refreshed) log('good', `<b>token refreshed</b> in session${e.exp ? `, valid until ${new Date(e.expiresAt).toLocaleTimeString('en-GB')}` : ''}`);
  });
  // A token function failing or a refresh refused (the old token holds), or a token that ended the client.
  client.on('error', (err) => {
    const code = String(err?.code ?? '');
    if (/TOKEN|UNAUTHORIZED/.test(code)) problem = code.replace(/^TICKFAN_ERR_/, '').toLowerCase().replace(/_/g, ' ');
    render();
  });
  render();
  setInterval(render, 250);
}
