//! `certgate serve [--config FILE] [--data-dir DIR]`: the gateway; without a configuration, the
//! quickstart (a demo CA, server and client certificates in ./certgate-data).

use std::path::PathBuf;
use std::sync::Arc;

use super::common::{data_dir_or_default, load, overrides, Common};
use super::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::config::{self, Config, Source};
use crate::server::{self, Reloader};

pub(super) fn run(common: Common) -> Result<(), CliError> {
    let config_path = common.file.config;
    let data_dir = common.data_dir;
    let reload: Option<Reloader> = config_path.clone().map(|path| {
        let data_dir = data_dir.clone();
        Box::new(move || load(&path, data_dir.as_deref())) as Reloader
    });
    let (config, banner) = match config_path {
        Some(path) => (load(&path, data_dir.as_deref())?, None),
        None => quickstart(data_dir)?,
    };
    let state = server::build_state(config, Arc::new(SystemClock))?;
    if let Some(banner) = banner {
        println!("{banner}");
    }
    actix_web::rt::System::new().block_on(server::serve(state, reload))?;
    Ok(())
}

/// The quickstart's configuration (its files made on the first start) and the banner that
/// tells a person what to try.
fn quickstart(data_dir: Option<PathBuf>) -> Result<(Config, Option<String>), CliError> {
    let dir = data_dir_or_default(data_dir);
    // The public URL follows the mTLS port, which an override may move.
    let mtls_port = std::env::var("CERTGATE__LISTEN__MTLS")
        .ok()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map_or(9443, |a| a.port());
    let (demo, text) = crate::quickstart::prepare(&dir, mtls_port, SystemClock.now())
        .map_err(|e| CliError::failed("certgate quickstart", e))?;
    let source = Source {
        text,
        origin: "quickstart".into(),
        base_dir: demo.data_dir.clone(),
    };
    let config = config::load(&source, overrides(None)?)?;
    let mtls_url = config.public_base().to_string();
    let banner = crate::quickstart::banner(&demo, &config.listen, &mtls_url);
    Ok((config, Some(banner)))
}
