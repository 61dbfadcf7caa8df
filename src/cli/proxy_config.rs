//! `certgate proxy-config nginx|traefik|caddy --host H --upstream URL`: a tested proxy
//! configuration (config/proxies/) with the operator's names; with `--config`, the CA bundle,
//! certgate's listener and the sign-in host come from certgate's own config.

use super::common::{load, ConfigFile};
use super::CliError;
use crate::proxy_config::{render, App, FromConfig, Params, Proxy};

// The options of `proxy-config` (the variant's doc comment is its help).
#[derive(clap::Args)]
pub(super) struct ProxyConfigArgs {
    #[arg(value_enum)]
    proxy: ProxyKind,
    /// The app's host name, e.g. grafana.example.com (not needed with --static).
    #[arg(long)]
    host: Option<String>,
    /// The app's base URL as the proxy reaches it, e.g. http://127.0.0.1:3000 (not needed
    /// with --static).
    #[arg(long)]
    upstream: Option<String>,
    /// A dedicated sign-in host for single sign-on across apps (without it, the app
    /// host asks for the certificate itself).
    #[arg(long)]
    auth_host: Option<String>,
    /// certgate's plain HTTP listener as the proxy reaches it (default: the config's
    /// listen.http, else 127.0.0.1:9180).
    #[arg(long)]
    certgate: Option<String>,
    /// The client CA bundle the proxy asks for certificates of, an absolute path (default:
    /// the config's client_ca.bundle, else /etc/certgate/client-ca.pem).
    #[arg(long)]
    client_ca: Option<String>,
    /// Traefik: print the static configuration (traefik.yml) instead of the routes.
    #[arg(long)]
    r#static: bool,
    /// Add what this app needs beside the proxy (its own settings, and the certgate
    /// [[rules]] it needs with why each bypass is or is not safe), as comments.
    #[arg(long, value_enum)]
    app: Option<AppKind>,
    /// With --app home-assistant: add the rule that sends Home Assistant's login page straight
    /// to "Sign in with certificate" (needs the certgate integration installed in Home
    /// Assistant, integrations/home-assistant/; without it, leave this out).
    #[arg(long)]
    sign_in_with_certgate: bool,
    // certgate's config: fills in the CA bundle, certgate's listener and the sign-in host
    // (public_url's host; under the app host's /.certgate/, the single-host layout). Flags
    // given explicitly win.
    #[command(flatten)]
    file: ConfigFile,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AppKind {
    HomeAssistant,
    Grafana,
    Generic,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProxyKind {
    Nginx,
    Traefik,
    Caddy,
}

pub(super) fn run(args: ProxyConfigArgs) -> Result<(), CliError> {
    let proxy = match args.proxy {
        ProxyKind::Nginx => Proxy::Nginx,
        ProxyKind::Traefik => Proxy::Traefik,
        ProxyKind::Caddy => Proxy::Caddy,
    };
    let mut params = Params {
        host: args.host,
        upstream: args.upstream,
        auth_host: args.auth_host,
        certgate: args.certgate,
        client_ca: args.client_ca,
        traefik_static: args.r#static,
        app: args.app.map(|a| match a {
            AppKind::HomeAssistant => App::HomeAssistant,
            AppKind::Grafana => App::Grafana,
            AppKind::Generic => App::Generic,
        }),
        ha_sign_in: args.sign_in_with_certgate,
    };
    if let Some(path) = &args.file.config {
        let config = load(path, None)?;
        let from = FromConfig {
            client_ca: config.client_ca.bundle_path.clone(),
            listen_http: config.listen.http,
            public_url: config.public_url.clone(),
            cert_header: config.proxy.cert_header,
        };
        params
            .fill_from(proxy, &from)
            .map_err(|e| CliError::usage("certgate proxy-config", e.to_string()))?;
    }
    let text = render(proxy, &params)
        .map_err(|e| CliError::usage("certgate proxy-config", e.to_string()))?;
    print!("{text}");
    Ok(())
}
