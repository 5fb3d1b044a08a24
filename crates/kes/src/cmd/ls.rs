//! `kes ls`: keys (default), identities (`-i`) or policies (`-p`) starting with a prefix.

use super::{block_on, print_names, warn_partial};
use crate::cli::LsArgs;
use crate::connect::{self, Settings};
use crate::fail::Failure;
use crate::term;

/// Runs `kes ls`.
pub fn run(args: LsArgs) -> Result<(), Failure> {
    term::set_color(args.conn.color);
    if args.identity && args.policy {
        return Err(Failure::msg(
            "'-i/--identity' and '-p/--policy' cannot be used together",
        ));
    }
    let client = connect::client(&Settings {
        insecure: args.conn.insecure,
        server: args.server.as_deref(),
        api_key: args.api_key.as_deref(),
    })?;
    let prefix = args.prefix.unwrap_or_default();
    block_on(async {
        let (header, mut names, continue_at) = if args.identity {
            let list = client
                .list_identities(&prefix)
                .await
                .map_err(|e| Failure::request("failed to list identities", e))?;
            ("Identity", list.identities, Some(list.continue_at))
        } else if args.policy {
            let list = client
                .list_policies(&prefix)
                .await
                .map_err(|e| Failure::request("failed to list policies", e))?;
            ("Policy", list.names, Some(list.continue_at))
        } else {
            let list = client
                .list_keys(&prefix)
                .await
                .map_err(|e| Failure::request("failed to list keys", e))?;
            ("Key", list.names, list.continue_at)
        };
        names.sort();
        print_names(header, &names, args.json)?;
        warn_partial(continue_at.as_deref());
        Ok(())
    })
}
