// Package envmap turns an environment name into that environment's
// 1Password Service Account token.
//
// It owns:
//   - environment names ([ValidName]) and the token reference contract
//     op://$OP_SA_CREDENTIALS_VAULT/SA - <env>/credential ([Reference]);
//   - the [Token] type, which redacts itself wherever it is printed or
//     logged and can be wiped;
//   - the token cache in the OS keychain ([Cache]: the Secret Service on
//     Linux, the macOS Keychain, or no cache at all — never a file);
//   - the 1Password CLI source ([NewOpSource]), which runs `op read <ref>`
//     with a scrubbed environment, classifies its failures into errors that
//     carry a fix, and retries transient ones with bounded backoff;
//   - the [Resolver], which serves a token from the cache while it is fresh
//     and otherwise fetches it once, even when several rssh processes miss the
//     cache at the same moment (an flock'd file that holds no secret).
//
// It knows nothing of SSH: which host maps to which environment is config's
// business, and when and how a token is sent is sshproxy's. It must not load
// the 1Password SDK either: its WASM core costs about 2 s and 85 MB, and the
// cache-hit path has to stay cheap.
package envmap
